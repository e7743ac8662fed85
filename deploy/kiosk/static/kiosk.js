// The kiosk page: asks /state.json every second and shows it; the start form and the buttons
// POST to the kiosk (the pseudonym goes in the body, never in a URL).
"use strict";
const $ = (id) => document.getElementById(id);
let reportsShown = -1;

function fmt(v, digits) {
  return v === null || v === undefined ? "–" : v.toFixed(digits);
}

function show(s) {
  document.body.dataset.phase = s.phase;
  const cam = $("camera");
  cam.textContent = s.camera.words;
  cam.className = s.camera.ok ? "ok" : "bad";
  $("view-msg").textContent = s.camera.ok ? "" : s.camera.words;
  if (s.pictures > 0 && !$("picture").getAttribute("src")) $("picture").src = "stream.mjpg";
  $("patient-shown").textContent = s.patient ? s.patient.subject : "";
  $("session-shown").textContent = s.session ? "session " + s.session : "";
  if (s.live) {
    $("steps").textContent = s.live.steps;
    $("cadence").textContent = fmt(s.live.cadence_spm, 0);
    $("speed").textContent = fmt(s.live.speed_mps, 2);
    $("strides").textContent = s.live.strides;
    $("trusted-line").textContent = s.live.strides ? "(" + s.live.trusted + " usable)" : "";
    $("others").textContent = s.live.others
      ? s.live.others + " other person(s) seen: kept apart, not counted" : "";
  }
  $("waiting").textContent = s.phase === "running" && !s.worker_answered
    ? "Waiting for the analysis to take the session: is the worker running?" : "";
  $("end-msg").textContent = s.message;
  $("give-up").style.display = s.phase === "ending" && s.message ? "block" : "none";
  if (s.phase === "report" && s.reports !== reportsShown) {
    reportsShown = s.reports;
    $("report-frame").src = "report.html?n=" + s.reports;
  }
}

async function poll() {
  try {
    show(await (await fetch("state.json", {cache: "no-store"})).json());
  } catch (e) {
    $("camera").textContent = "The kiosk is not answering: is the pipeline running?";
    $("camera").className = "bad";
  }
  setTimeout(poll, 1000);
}

async function post(path, body) {
  const r = await fetch(path, {method: "POST", body: body || new URLSearchParams()});
  return r.json();
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  for (const p of document.querySelectorAll("#start-form .error")) p.textContent = "";
  const answer = await post("session/start", new URLSearchParams(new FormData(e.target)));
  if (!answer.ok) {
    for (const [field, text] of Object.entries(answer.errors)) {
      const p = $("err-" + field);
      if (p) p.textContent = text;
    }
    return;
  }
  e.target.reset();
  show(await (await fetch("state.json", {cache: "no-store"})).json());
});
$("end").addEventListener("click", async () => {
  await post("session/end");
  show(await (await fetch("state.json", {cache: "no-store"})).json());
});
for (const id of ["new", "give-up"]) {
  $(id).addEventListener("click", async () => {
    await post("session/new");
    show(await (await fetch("state.json", {cache: "no-store"})).json());
  });
}
poll();
