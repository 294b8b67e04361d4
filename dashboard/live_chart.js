// A run chart that a live panel redraws in place (dashboard/live_chart.py).
//
// Streamlit calls the default export on every render of the element with the latest `data`:
// {spec: figure JSON, config: Plotly config JSON, height: px, src: plotly.min.js URL}. The
// first call makes one <div>; later calls hand it to Plotly.react, which diffs the new figure
// against the drawn one instead of building a new chart.
//
// The page draws at its own pace. A redraw costs 50-100 ms of the page's one main thread on a
// busy 2-core machine, so five charts polled twice a second kept a whole core busy, taken from
// the training on the same cores. Redraws therefore share out a budget: after a redraw that took
// d ms, the next waits d * (1/BUSY - 1) ms, and a chart whose figures arrived meanwhile draws only
// its latest. A fast machine redraws every poll; a slow one skips figures, never falls behind.
// A redraw's d runs to the end of the frame that shows it: the style, layout and paint that
// Plotly.react leaves to the browser cost as much again as the call itself.
// A chart scrolled out of sight (or in a closed expander) is not redrawn until it comes back
// into view; then it draws its latest figure.

const BUSY = 0.3; // share of the main thread that chart redraws may take
const NOW = () => performance.now();

function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__bpttPlotly) {
    // one <script> for every chart of the page, however many mount before it has loaded
    window.__bpttPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__bpttPlotly = null; // the next render tries again
        reject(new Error("plotly.js did not load from " + src));
      };
      document.head.appendChild(script);
    });
  }
  return window.__bpttPlotly;
}

// Material Symbols "fullscreen", in Plotly's modebar icon format
const FULLSCREEN_ICON = {
  width: 24, height: 24,
  path: "M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z",
};

function fullscreenButton(div) {
  return {
    name: "Fullscreen", title: "Fullscreen", icon: FULLSCREEN_ICON,
    click: () => (document.fullscreenElement === div ? document.exitFullscreen() : div.requestFullscreen()),
  };
}

// Draw the chart's latest figure; false when it is already drawn.
function draw(div, Plotly) {
  const want = div.__want;
  const drawn = want.spec + "\u0000" + want.config;
  if (div.__drawn === drawn) return false;
  const fig = JSON.parse(want.spec);
  const config = JSON.parse(want.config);
  config.responsive = true; // follow the column's width when the window or sidebar changes
  config.modeBarButtonsToAdd = [fullscreenButton(div), ...(config.modeBarButtonsToAdd || [])];
  // as Streamlit's own charts: no cloud upload, and no box or lasso select on a chart that selects nothing
  config.showSendToCloud = false;
  config.modeBarButtonsToRemove = [...(config.modeBarButtonsToRemove || []), "sendChartToCloud", "lasso2d", "select2d"];
  const layout = fig.layout || {};
  if (document.fullscreenElement === div) layout.height = window.innerHeight;
  Plotly.react(div, fig.data || [], layout, config);
  div.__drawn = drawn;
  div.__draws = (div.__draws || 0) + 1; // read by bench/bench_app.py: how live the charts are
  return true;
}

// --- the page's one queue of charts waiting to be redrawn ------------------------------------
function queue() {
  // on window: every chart of the page shares it, whichever copy of this module drew it
  if (!window.__bpttCharts) {
    window.__bpttCharts = { waiting: new Set(), nextFree: 0, timer: null, measuring: false, seen: null };
  }
  return window.__bpttCharts;
}

// Which charts are in (or near) the viewport; one that comes into view draws its latest figure.
function watchSight(div) {
  const q = queue();
  if (!q.seen) {
    q.seen = new IntersectionObserver((entries) => {
      for (const e of entries) {
        e.target.__inSight = e.isIntersecting;
        if (e.isIntersecting && e.target.__want && window.Plotly) request(e.target);
      }
    }, { rootMargin: "200px" });
  }
  q.seen.observe(div);
}

const outOfSight = (div) => div.__inSight === false && document.fullscreenElement !== div;

function request(div) {
  const q = queue();
  q.waiting.add(div); // a chart already waiting keeps its place in line and draws its latest figure
  pump();
}

// A chart never drawn (a page's first frames, a new column) does not wait for the budget.
const neverDrawn = (div) => div.__drawn === undefined;

function pump() {
  const q = queue();
  if (q.waiting.size === 0 || document.hidden) return; // a background tab draws nothing; visibilitychange resumes it
  if (q.measuring) return; // the last redraw's frame is not out yet: its cost decides the next one's wait
  if (q.nextFree <= NOW() || [...q.waiting].some(neverDrawn)) {
    clearTimeout(q.timer); // a new chart does not wait behind the budget's pause either
    q.timer = null;
    drawNext();
  } else if (q.timer === null) {
    q.timer = setTimeout(() => {
      q.timer = null;
      drawNext();
    }, q.nextFree - NOW());
  }
}

function drawNext() {
  const q = queue();
  const Plotly = window.Plotly;
  if (!Plotly) return; // still loading: each chart asks again once plotly.js is in
  const order = [...q.waiting].sort((a, b) => neverDrawn(b) - neverDrawn(a)); // never drawn first
  for (const div of order) {
    q.waiting.delete(div);
    if (!div.isConnected) continue;
    if (outOfSight(div) && !neverDrawn(div)) continue; // drawn when it comes back into view
    const start = NOW();
    let drew = false;
    try {
      drew = draw(div, Plotly);
    } catch (err) {
      div.textContent = "This chart could not be drawn: " + err.message;
    }
    if (drew) {
      // one redraw, then the budget's pause, measured once the frame that shows it is out
      q.measuring = true;
      requestAnimationFrame(() => setTimeout(() => {
        q.measuring = false;
        const now = NOW();
        q.nextFree = now + (now - start) * (1 / BUSY - 1);
        pump();
      }, 0));
      return;
    }
  }
  pump();
}

document.addEventListener("visibilitychange", () => pump());

export default function ({ parentElement, data }) {
  let div = parentElement.querySelector("div.bptt-chart");
  if (!div) {
    div = document.createElement("div");
    div.className = "bptt-chart";
    div.setAttribute("data-testid", "bpttChart");
    parentElement.appendChild(div);
    div.addEventListener("fullscreenchange", () => {
      div.__drawn = undefined; // redraw at the screen's height, or back at the chart's own
      request(div);
    });
    watchSight(div);
  }
  div.style.height = data.height + "px";
  div.__want = data; // the latest figure wins: a slow load never draws an older one over a newer one
  loadPlotly(data.src)
    .then(() => request(div))
    .catch((err) => {
      div.textContent = "This chart could not be drawn: " + err.message;
    });
  return () => {
    // Streamlit calls this when the element goes; purge frees Plotly's resize listener and DOM
    setTimeout(() => {
      if (div.isConnected) return;
      if (queue().seen) queue().seen.unobserve(div);
      if (window.Plotly) window.Plotly.purge(div);
    }, 0);
  };
}
