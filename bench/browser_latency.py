"""Stroke-to-screen latency in a real browser: from releasing the mouse to the prediction, the feature maps
and the saliency being on the page, timed inside the page with performance.now().

    python bench/browser_latency.py [--n 30] [--warm 3] [--chromium PATH]

It prints only at the end: on the 2-core VM each stroke takes ~7 s with clearing and waiting, so the
defaults (twice 3 + 30 strokes) took ~14 minutes there, and --n 8 --warm 1 ~3.

This is what someone drawing feels; unlike gradio_client it has no polling interval of its own. It also
splits each stroke at the moment the page sends the predict request (/queue/join, from the page's
resource timings): before it, the sketchpad exports its canvas (WebGL readPixels, which headless
Chromium runs in software here) and uploads it; after it, the server answers and the page shows the result.
The same strokes are then timed on a bare page holding only the app's sketchpad with a do-nothing
handler: Gradio's own floor in this browser, which the app's figures are compared with.
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
from bench_args import count  # noqa: E402  (same folder)

# Records, in page time, the release of the mouse and when each output is first shown for that stroke.
# An image counts as shown once it has a new src and has decoded.
PROBE_JS = """
() => {
  window.__t = {};
  performance.setResourceTimingBufferSize(100000);
  document.addEventListener('pointerup', () => {
    performance.clearResourceTimings();
    window.__reads = [];
    window.__t = {up: performance.now()};
  }, true);
  // Canvas exports: the sketchpad reads its layers back from WebGL (readPixels) before uploading them.
  window.__reads = [];
  for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
    const read = C.prototype.readPixels;
    C.prototype.readPixels = function (...args) {
      const start = performance.now();
      const out = read.apply(this, args);
      if (window.__t.up) window.__reads.push([start, performance.now() - start]);
      return out;
    };
  }
  window.__joined = () => {
    const join = performance.getEntriesByType('resource').find(e => e.name.includes('/queue/join'));
    return join ? join.startTime : null;
  };
  const watchText = (sel, key, needle) => new MutationObserver(() => {
    const t = window.__t, el = document.querySelector(sel);
    if (t.up && !t[key] && el && el.textContent.includes(needle)) t[key] = performance.now();
  }).observe(document.querySelector(sel), {subtree: true, childList: true, characterData: true});
  const watchImage = (sel, key) => {
    if (!document.querySelector(sel)) return;  // the floor page has no feature maps
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


def floor_demo():
    """The framework's floor: the app's sketchpad, exactly as configured, with a handler that does nothing."""
    import gradio as gr

    import app

    with gr.Blocks() as demo:
        sketch = gr.Sketchpad(**app.SKETCHPAD)
        status = gr.Markdown(app.EMPTY_MESSAGE, elem_id="status")
        sketch.change(lambda s: "Prediction: -" if s is not None and s["composite"] is not None
                      and s["composite"][..., 3].any() else app.EMPTY_MESSAGE,
                      sketch, status, show_progress="hidden", trigger_mode="always_last")
        demo.load(None, js=app.ON_LOAD_JS)
    return demo


def draw_stroke(page, x0: float, y0: float, length: float, seven: bool) -> None:
    """One mouse stroke: a vertical "1", or a "7" (bar, then slanted down)."""
    page.mouse.move(x0, y0)
    page.mouse.down()
    if seven:
        for k in range(1, 9):
            page.mouse.move(x0 + 12 * k, y0)
        x0 += 96
    for k in range(1, 16):
        page.mouse.move(x0 - (4 if seven else 0) * k, y0 + length / 15 * k)
    page.mouse.up()


def time_strokes(browser, url: str, n: int, warm: int, outputs: tuple[str, ...], seed: int = 0) -> dict:
    """Draw warm + n one-stroke digits on the page at url; per stroke, ms from mouse release to each event."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect

    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {k: [] for k in ("prediction", *outputs, "request", "served", "readback", "reads")}
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(url, wait_until="load")
    canvas = page.locator("#sketchpad canvas").first
    expect(canvas).to_be_visible(timeout=20_000)
    expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(re.compile("highlight"), timeout=10_000)
    page.evaluate(PROBE_JS)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    done = " && ".join(f"window.__t.{k}" for k in ("prediction", *outputs))
    for i in range(warm + n):
        # A "1" or a "7" at a random place and size: one stroke, as people draw them.
        x0, y0 = cx + rng.uniform(-40, 40), cy - rng.uniform(60, 100)
        length = rng.uniform(120, 180)
        for attempt in (1, 2):
            page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
            expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
            time.sleep(0.3)  # let the clear's own events finish
            draw_stroke(page, x0, y0, length, seven=bool(i % 2))
            try:
                page.wait_for_function(f"() => {done}", timeout=30_000)
                break
            except PlaywrightTimeout:
                # On a loaded machine software WebGL has, rarely, dropped a whole stroke; draw it again
                # rather than lose the run, and say so (the retried stroke is the one timed).
                if attempt == 2:
                    raise
                print(f"stroke {i + 1} on {url} showed nothing after 30 s; drawing it again", file=sys.stderr)
        t = page.evaluate("() => ({...window.__t, join: window.__joined(), reads: window.__reads})")
        if i >= warm:
            for key in ("prediction", *outputs):
                times[key].append(t[key] - t["up"])
            times["request"].append(t["join"] - t["up"])
            times["served"].append(t["prediction"] - t["join"])
            before = [ms for start, ms in t["reads"] if start < t["join"]]
            times["readback"].append(sum(before))
            times["reads"].append(len(before))
    page.close()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=count(1), default=30, help="strokes to time")
    p.add_argument("--warm", type=count(0), default=3, help="untimed strokes first (page and server warm-up)")
    p.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or shutil.which("chromium"))
    args = p.parse_args()
    if not args.chromium or not os.access(args.chromium, os.X_OK):
        sys.exit(f"Chromium not found{' at ' + args.chromium if args.chromium else ''}: apt-get install chromium, "
                 f"or pass --chromium PATH")
    from playwright.sync_api import sync_playwright

    import app

    demos = {"app": app.demo, "floor": floor_demo()}
    urls = {}
    try:
        for name, demo in demos.items():
            port = free_port()
            demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
            urls[name] = f"http://127.0.0.1:{port}/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--no-sandbox", "--disable-background-networking"])
            times = time_strokes(browser, urls["app"], args.n, args.warm, ("maps", "saliency"))
            floor = time_strokes(browser, urls["floor"], args.n, args.warm, ())
            browser.close()
    finally:
        for demo in demos.values():
            demo.close()
    print(f"stroke released -> predict request sent (canvas export + upload in the browser): "
          f"{percentiles(times['request'])}")
    print(f"  of which WebGL readPixels (the canvas read back, {np.median(times['reads']):.0f} reads a stroke): "
          f"{percentiles(times['readback'])}")
    print(f"predict request sent -> prediction text shown (server + page): {percentiles(times['served'])}")
    print(f"stroke released -> prediction text shown: {percentiles(times['prediction'])}")
    print(f"stroke released -> block4 feature maps decoded on the page: {percentiles(times['maps'])}")
    print(f"stroke released -> saliency (second event) decoded on the page: {percentiles(times['saliency'])}")
    print(f"floor: the same sketchpad on a bare page, handler doing nothing: request sent "
          f"{percentiles(floor['request'])}; text shown {percentiles(floor['prediction'])}")
    print(f"app - floor, p50: request sent {np.median(times['request']) - np.median(floor['request']):+.0f} ms, "
          f"text shown {np.median(times['prediction']) - np.median(floor['prediction']):+.0f} ms")


if __name__ == "__main__":
    main()
