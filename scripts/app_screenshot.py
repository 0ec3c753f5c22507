#!/usr/bin/env python
"""Drive ``pdfnet app`` in headless Chromium: start it, upload images, wait for the outputs, screenshot.

Uses Debian's ``chromium`` + ``chromium-driver`` through Selenium (no browser download); the browser test
(``tests/test_app.py``) uses the same functions (the README's picture comes from that test, with its tiny
random checkpoint). For a picture of a real checkpoint, e.g. after ``make demo``::

    python scripts/app_screenshot.py --ckpt demo_out/run/best.pt \\
        --depth-dir demo_out/data/DIS-TE2/depth_large_1024 \\
        --images demo_out/data/DIS-TE2/im/DIS-TE2_0000.jpg demo_out/data/DIS-TE2/im/DIS-TE2_0001.jpg \\
        --out docs/app_screenshot.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1300",
)
OUTPUT_KINDS: tuple[str, ...] = ("mask", "alpha", "cutout", "depth")


def missing_tools() -> list[str]:
    """What the browser run lacks: ``chromium``, ``chromedriver``, ``gradio``, ``selenium``."""
    missing = [n for n in ("chromium", "chromedriver") if shutil.which(n) is None]
    for mod in ("gradio", "selenium"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_args: list[str], port: int, log: Path, cwd: Path) -> subprocess.Popen:
    """``python -m pdfnet.cli.main app ... --port PORT`` in the background, output into ``log``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "pdfnet.cli.main", "app", *app_args, "--port", str(port)]
    with open(log, "w") as f:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until ``url`` answers 200; raises RuntimeError if the app exits or the time runs out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"pdfnet app exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"pdfnet app did not answer on {url} within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def chrome(user_data_dir: Path):
    """Headless Debian Chromium through its chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def upload_and_run(driver, url: str, files: list[Path], n_ok: int, timeout: float = 120) -> dict:
    """Open the page, upload ``files``, press Segment, wait for ``n_ok`` results in every gallery.

    Returns:
        ``{"status": page status text, "sizes": {kind: [(w, h), ...]}, "resources": [URLs fetched]}``.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#pdfnet-input input[type=file]"))
    upload.send_keys("\n".join(str(p) for p in files))
    wait.until(lambda d: Path(files[-1]).stem in d.find_element(By.ID, "pdfnet-input").text)  # all uploaded
    driver.find_element(By.ID, "pdfnet-run").click()
    wait.until(lambda d: f"Done: {n_ok} image(s)" in d.find_element(By.ID, "pdfnet-status").text)

    def sizes(kind):
        return driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).filter(i => i.complete)"
            ".map(i => [i.naturalWidth, i.naturalHeight]);", f"#pdfnet-{kind} img")

    got = {k: wait.until(lambda d, k=k: (s := sizes(k)) and len(s) >= n_ok and s) for k in OUTPUT_KINDS}
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#pdfnet-download a"))
    time.sleep(1.0)  # let the last thumbnails paint before a screenshot
    return {"status": driver.find_element(By.ID, "pdfnet-status").text,
            "sizes": {k: [tuple(s) for s in v] for k, v in got.items()},
            "resources": driver.execute_script("return performance.getEntriesByType('resource')"
                                               ".map(e => e.name)")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True)
    depth = ap.add_mutually_exclusive_group(required=True)
    depth.add_argument("--depth-dir")
    depth.add_argument("--depth-model")
    ap.add_argument("--images", nargs="+", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="screenshot PNG")
    args = ap.parse_args(argv)
    if missing := missing_tools():
        raise SystemExit(f"app_screenshot: missing {', '.join(missing)}")
    app_args = ["--ckpt", str(Path(args.ckpt).resolve()), "--device", "cpu", "--examples", "0"]
    app_args += (["--depth-dir", str(Path(args.depth_dir).resolve())] if args.depth_dir
                 else ["--depth-model", args.depth_model])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        proc = start_app(app_args, port, tmp / "app.log", tmp)
        driver = None
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url, proc, tmp / "app.log", timeout=300)
            driver = chrome(tmp / "profile")
            res = upload_and_run(driver, url, [p.resolve() for p in args.images], len(args.images))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            if driver is not None:
                driver.quit()
            stop(proc)
    print(f"wrote {args.out} ({res['status']!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
