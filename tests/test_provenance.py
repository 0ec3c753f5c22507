"""pdfnet.utils.provenance: the one place that records the git commit and the environment."""

from helpers import REPO

from pdfnet.utils.provenance import environment_info, git_info, package_versions


def test_git_info(tmp_path):
    info = git_info(REPO)
    assert set(info) == {"commit", "dirty"}
    if info["commit"] is not None:  # a checkout (an exported tree has no .git)
        assert len(info["commit"]) == 40 and len(git_info(REPO, short=True)["commit"]) < 40
    assert git_info(tmp_path) == {"commit": None, "dirty": None}


def test_environment_and_versions():
    assert package_versions(("numpy", "no-such-distribution-xyz")) == {
        "numpy": __import__("numpy").__version__, "no-such-distribution-xyz": None}
    env = environment_info(("numpy",))
    assert {"python", "platform", "hostname", "argv", "cpu_count", "world_size", "numpy"} <= set(env)
    assert "torch_threads" in env  # torch is imported in the test process
