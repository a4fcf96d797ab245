"""Stroke-to-screen latency in a real browser: from releasing the mouse to the prediction, the feature maps
and the saliency being on the page, timed inside the page with performance.now().

    python bench/browser_latency.py [--n 30] [--warm 3] [--chromium PATH]

This is what someone drawing feels; unlike gradio_client it has no polling interval of its own. It also
splits each stroke at the moment the page sends the predict request (/queue/join, from the page's
resource timings): before it, the sketchpad exports its canvas (WebGL readPixels, which headless
Chromium runs in software here) and uploads it; after it, the server answers and the page shows the result.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from load_test import free_port  # noqa: E402  (same folder)

# Records, in page time, the release of the mouse and when each output is first shown for that stroke.
# An image counts as shown once it has a new src and has decoded.
PROBE_JS = """
() => {
  window.__t = {};
  performance.setResourceTimingBufferSize(100000);
  document.addEventListener('pointerup', () => {
    performance.clearResourceTimings();
    window.__t = {up: performance.now()};
  }, true);
  window.__joined = () => {
    const join = performance.getEntriesByType('resource').find(e => e.name.includes('/queue/join'));
    return join ? join.startTime : null;
  };
  const watchText = (sel, key, needle) => new MutationObserver(() => {
    const t = window.__t, el = document.querySelector(sel);
    if (t.up && !t[key] && el && el.textContent.includes(needle)) t[key] = performance.now();
  }).observe(document.querySelector(sel), {subtree: true, childList: true, characterData: true});
  const watchImage = (sel, key) => {
    let last = null;
    new MutationObserver(() => {
      const t = window.__t, img = document.querySelector(sel + ' img');
      const src = img ? img.src : null;
      if (src === last) return;
      last = src;
      if (t.up && img && !t[key]) img.decode().then(() => { if (!t[key]) t[key] = performance.now(); }, () => {});
    }).observe(document.querySelector(sel), {subtree: true, childList: true, attributes: true});
  };
  watchText('#status', 'prediction', 'Prediction:');
  watchImage('#block4-maps', 'maps');
  watchImage('#saliency', 'saliency');
}
"""


def percentiles(ms: list[float]) -> str:
    a = np.array(ms)
    return f"p50 {np.percentile(a, 50):.0f} ms, p95 {np.percentile(a, 95):.0f} ms, mean {a.mean():.0f} ms (n={len(a)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="strokes to time")
    p.add_argument("--warm", type=int, default=3, help="untimed strokes first (page and server warm-up)")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"))
    args = p.parse_args()
    if not args.chromium:
        sys.exit("Chromium not found: apt-get install chromium, or pass --chromium PATH")
    from playwright.sync_api import expect, sync_playwright

    import app

    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {k: [] for k in ("prediction", "maps", "saliency", "request", "served")}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--no-sandbox", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            canvas = page.locator("#sketchpad canvas").first
            expect(canvas).to_be_visible(timeout=20_000)
            expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(
                re.compile("highlight"), timeout=10_000)
            page.evaluate(PROBE_JS)
            box = canvas.bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            for i in range(args.warm + args.n):
                page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
                expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
                time.sleep(0.3)  # let the clear's own events finish
                # A "1" or a "7" at a random place and size: one stroke, as people draw them.
                x0, y0 = cx + rng.uniform(-40, 40), cy - rng.uniform(60, 100)
                length = rng.uniform(120, 180)
                page.mouse.move(x0, y0)
                page.mouse.down()
                if i % 2:
                    for k in range(1, 9):
                        page.mouse.move(x0 + 12 * k, y0)
                    x0 += 96
                for k in range(1, 16):
                    page.mouse.move(x0 - (4 if i % 2 else 0) * k, y0 + length / 15 * k)
                page.mouse.up()
                page.wait_for_function("() => window.__t.prediction && window.__t.maps && window.__t.saliency",
                                       timeout=30_000)
                t = page.evaluate("() => ({...window.__t, join: window.__joined()})")
                if i >= args.warm:
                    for key in ("prediction", "maps", "saliency"):
                        times[key].append(t[key] - t["up"])
                    times["request"].append(t["join"] - t["up"])
                    times["served"].append(t["prediction"] - t["join"])
            browser.close()
    finally:
        app.demo.close()
    print(f"stroke released -> predict request sent (canvas export + upload in the browser): "
          f"{percentiles(times['request'])}")
    print(f"predict request sent -> prediction text shown (server + page): {percentiles(times['served'])}")
    print(f"stroke released -> prediction text shown: {percentiles(times['prediction'])}")
    print(f"stroke released -> block4 feature maps decoded on the page: {percentiles(times['maps'])}")
    print(f"stroke released -> saliency (second event) decoded on the page: {percentiles(times['saliency'])}")


if __name__ == "__main__":
    main()
