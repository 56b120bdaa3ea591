// The live view's only script (plain JavaScript, no build step): read api/state once a second and show it.
// Every value is written with textContent, never as HTML: alarm names and alert subjects come from the system.
"use strict";

const FEED = "api/state";
const PERIOD_MS = 1000;
const HISTORY_SECONDS = 120;
const STALE_SECONDS = 5; // a sample older than this means the feed is frozen, not live
const history = []; // [time, waiting, in flight] for the chart
let lastUpdate = 0;

function $(id) { return document.getElementById(id); }

function number(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function seconds(value) {
  if (value < 120) return `${number(value, value < 10 ? 1 : 0)} s`;
  if (value < 7200) return `${number(value / 60, 1)} min`;
  return `${number(value / 3600, 2)} h`;
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString("en-GB");
}

function row(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const [text, cellClass] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cellClass) td.className = cellClass;
    tr.appendChild(td);
  }
  return tr;
}

function render(state) {
  $("stack").textContent = `stack ${state.stack}`;
  $("queue-visible").textContent = number(state.queue.visible);
  $("queue-in-flight").textContent = number(state.queue.in_flight);
  $("queue-dlq").textContent = number(state.queue.dlq);
  for (const name of ["accepted", "paid", "failed"]) {
    $(`rate-${name}`).textContent = number(state.rates[name], 1);
    $(`total-${name}`).textContent = number(state.totals[name]);
  }
  $("rate-window").textContent = number(state.rate_window_seconds, 1);
  $("payments").textContent = number(state.payments_in_flight);
  const wait = state.expected_wait;
  $("wait").textContent = wait.seconds === null ? "∞" : seconds(wait.seconds);
  $("wait-detail").textContent = wait.why ||
    `${number(wait.waiting)} waiting / (${wait.worker_tasks} task${wait.worker_tasks === 1 ? "" : "s"} × ` +
    `${wait.workers_per_task} workers / ` +
    `${wait.payment_seconds} s) = ${number(wait.waiting)} / ${number(wait.paid_per_second, 1)} per s`;
  $("services").replaceChildren(...state.services.map((s) => row(
    [[s.role], [number(s.desired)], [number(s.running)], [number(s.healthy)]],
    s.running < s.desired ? "short" : "")));
  $("alarms").replaceChildren(...state.alarms.map((a) => row(
    [[a.name, "name"], [a.state + (a.actions_enabled ? "" : " (muted)"), "state"],
     [a.since ? new Date(a.since).toLocaleTimeString("en-GB") : "–"], [a.threshold],
     [a.measures || ""]],
    `state-${a.state}${a.actions_enabled ? "" : " muted"}`)));
  const notes = state.notifications.map((n) => {
    const li = document.createElement("li");
    li.textContent = `${clock(n.seen_at)}  ${n.subject}`;
    return li;
  });
  if (notes.length) $("notifications").replaceChildren(...notes);
  for (const [key, text] of Object.entries(state.sources)) {
    const element = $(`source-${key}`);
    if (element) element.textContent = `Source: ${text}.`;
  }
  $("console-cpu").textContent = state.console.cpu_percent === null ? "–" : `${number(state.console.cpu_percent, 1)} %`;
  $("errors").textContent = state.errors.join("; ");
  history.push([state.time, state.queue.visible || 0, state.queue.in_flight || 0]);
  while (history.length && history[0][0] < state.time - HISTORY_SECONDS) history.shift();
  draw(state.time);
}

function draw(now) {
  const canvas = $("chart");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const top = Math.max(10, ...history.map(([, waiting, inFlight]) => Math.max(waiting, inFlight)));
  const span = Math.min(HISTORY_SECONDS, Math.max(10, now - history[0][0])); // what the page has seen, up to 2 min
  $("chart-span").textContent = `last ${Math.round(span)} s`;
  $("chart-max").textContent = `top of the chart: ${number(top)}`;
  const x = (t) => width - ((now - t) / span) * width;
  const y = (value) => height - 2 - (value / top) * (height - 6);
  for (const [index, colour] of [[1, "#1f5fbf"], [2, "#e39b16"]]) {
    context.beginPath();
    context.strokeStyle = colour;
    context.lineWidth = 2;
    history.forEach((point, i) => (i ? context.lineTo : context.moveTo).call(context, x(point[0]), y(point[index])));
    context.stroke();
  }
}

function feed(live, text) {
  const element = $("feed");
  element.className = `feed ${live ? "live" : "lost"}`;
  element.textContent = text;
  document.body.classList.toggle("stale", !live);
}

async function poll() {
  try {
    const response = await fetch(FEED, { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    render(state);
    const age = Date.now() / 1000 - state.time;
    if (age > STALE_SECONDS) throw new Error(`the last sample is ${Math.round(age)} s old`);
    lastUpdate = Date.now();
    feed(true, `live, updated ${new Date(lastUpdate).toLocaleTimeString("en-GB")}`);
  } catch (error) {
    const since = lastUpdate ? `; last update ${Math.round((Date.now() - lastUpdate) / 1000)} s ago` : "";
    feed(false, `feed lost (${error.message})${since}`);
  } finally {
    setTimeout(poll, PERIOD_MS);
  }
}

poll();
