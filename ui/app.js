// tuneloop's web player: plain JS, no build step. Talks JSON-RPC over POST /rpc and
// listens to the daemon's events on GET /events (Server-Sent Events). docs/ui.md.
'use strict';

const $ = (id) => document.getElementById(id);

// The access token: `tuneloop ui` opens /?token=…; the page keeps it in this origin's storage
// (other servers on 127.0.0.1 cannot read it, as they could receive a cookie), drops it from
// the address bar, and sends it as a Bearer header, or in the URL where a header cannot go
// (audio elements, EventSource).
const TOKEN = (() => {
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    localStorage.setItem('tuneloop-token', fromUrl);
    history.replaceState(null, '', location.pathname);
  }
  return localStorage.getItem('tuneloop-token') || '';
})();
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const withToken = (url) => `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(TOKEN)}`;
const METHOD_NOT_FOUND = -32601;
const NO_AUDIO_DEVICE = -32005;
const MODEL_ERROR = -32006;

class RpcError extends Error {
  constructor(method, error) {
    super(error.message || String(error));
    this.method = method;
    this.code = error.code;
    this.data = error.data;
  }
}

let rpcId = 0;
async function rpc(method, params) {
  const body = { jsonrpc: '2.0', id: ++rpcId, method };
  if (params !== undefined) body.params = params;
  const res = await fetch('/rpc', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...AUTH },
    body: JSON.stringify(body),
  });
  if (res.status === 401) throw new RpcError(method, { code: 401, message: 'not authorised: open the address that `tuneloop ui` prints' });
  if (!res.ok) throw new RpcError(method, { code: res.status, message: `HTTP ${res.status}` });
  const reply = await res.json();
  if (reply.error) throw new RpcError(method, reply.error);
  return reply.result;
}

// ------------------------------------------------------------------ messages

let messageTimer = null;
function say(text, kind = 'info') {
  const box = $('message');
  box.textContent = text;
  box.className = 'message ' + kind;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { box.hidden = true; }, kind === 'error' ? 9000 : 4000);
}

function explain(err, what) {
  if (err.code === METHOD_NOT_FOUND)
    return `${what}: not available yet — this daemon has no “${err.method}” method (the learning loop is not installed).`;
  if (err.code === NO_AUDIO_DEVICE)
    return `${what}: the daemon has no sound card (${err.message}). Choose “in the browser”.`;
  if (err.code === MODEL_ERROR)
    return `${what}: the model could not do it (${err.message}).`;
  return `${what}: ${err.message}`;
}

async function attempt(what, fn) {
  try {
    return await fn();
  } catch (err) {
    say(explain(err, what), 'error');
    return undefined;
  }
}

// ------------------------------------------------------------------ state

const state = {
  where: 'daemon',        // 'daemon' | 'browser'
  status: null,           // the daemon's `status`
  tracks: [],             // tracks.list, newest first
  iterations: null,       // iterations.list, or null when the loop is not there
  browserQueue: [],       // track ids, play order
  browserIndex: -1,
  browserTrack: null,     // the track playing in the <audio> element
  listen: null,           // { trackId, heard, last } for the browser play
  rating: null,           // stars of the track shown
  job: null,              // { started, progress, at }
};

function fmtTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  const t = Math.round(s);
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

function fmtDuration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function iterationName(iterationId) {
  if (iterationId === null || iterationId === undefined) return 'base model';
  const it = (state.iterations || []).find((i) => i.id === iterationId);
  return it ? `iteration ${it.number}` : `iteration #${iterationId}`;
}

function trackById(id) {
  return state.tracks.find((t) => t.id === id) || null;
}

function trackTitle(t) {
  const tags = t.tags ? ` · ${t.tags}` : '';
  return `Track ${t.id}${tags}`;
}

// ------------------------------------------------------------------ now playing

function currentTrack() {
  if (state.where === 'browser') return state.browserTrack;
  return state.status && state.status.track ? state.status.track : null;
}

function renderNowPlaying() {
  // Blinding: nothing that names a track or its iteration while a study session is open.
  if (studyOpen()) {
    $('now-track').textContent = 'Nothing playing';
    $('now-file').textContent = '';
    $('now-iteration').textContent = '–';
    $('predicted').hidden = true;
    return;
  }
  const t = currentTrack();
  $('now-track').textContent = t ? trackTitle(t) : 'Nothing playing';
  $('now-file').textContent = t ? t.path.split('/').pop() : '';
  $('now-iteration').textContent = t ? iterationName(t.iteration_id) : '–';
  let position = 0, duration = t ? t.duration || 0 : 0, playing = false;
  if (state.where === 'browser') {
    const a = $('audio');
    position = a.currentTime || 0;
    if (Number.isFinite(a.duration)) duration = a.duration;
    playing = !a.paused && !a.ended;
  } else if (state.status) {
    const p = state.status.play;
    if (p) {
      position = p.position || 0;
      duration = p.duration || duration;
    }
    playing = state.status.state === 'playing';
  }
  $('elapsed').textContent = fmtTime(position);
  $('duration').textContent = fmtTime(duration);
  const seek = $('seek');
  if (document.activeElement !== seek) {
    seek.max = String(Math.max(duration, 0.1));
    seek.value = String(Math.min(position, duration));
  }
  seek.setAttribute('aria-valuetext', `${fmtTime(position)} of ${fmtTime(duration)}`);
  $('btn-play').setAttribute('aria-pressed', String(playing));
  document.body.classList.toggle('playing', playing);
  const stars = t ? (t.id === state.ratingTrack ? state.rating : t.stars) : null;
  renderStars(stars);
  // Why this track: the reward model's guess of how much the listener will like it.
  const predicted = $('predicted');
  const score = t && typeof t.predicted_score === 'number' ? t.predicted_score : null;
  const variation = t && typeof t.variation_of === 'number';
  predicted.hidden = score === null && !variation;
  const why = [];
  if (variation) why.push('a variation of a track you liked');
  if (score !== null) why.push(`predicted liking ${Math.round(100 * score)} %`);
  if (why.length) predicted.textContent = `Picked for you: ${why.join(', ')}`;
}

// ------------------------------------------------------------------ stars

const STAR_VALUES = [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5];

function buildStars(box, onRate) {
  for (let i = 1; i <= 5; i++) {
    const star = document.createElement('span');
    star.className = 'star';
    star.dataset.star = String(i);
    const halves = i === 1 ? [1] : [i - 0.5, i];
    for (const v of halves) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'half ' + (halves.length === 1 ? 'whole' : v === i ? 'right' : 'left');
      b.setAttribute('role', 'radio');
      b.setAttribute('aria-checked', 'false');
      b.setAttribute('aria-label', `${v} star${v === 1 ? '' : 's'}`);
      b.dataset.value = String(v);
      b.tabIndex = v === 1 ? 0 : -1;
      b.addEventListener('click', () => onRate(v));
      b.addEventListener('keydown', (e) => {
        const k = STAR_VALUES.indexOf(v);
        let next = null;
        if (e.key === 'ArrowRight' || e.key === 'ArrowUp') next = STAR_VALUES[Math.min(k + 1, STAR_VALUES.length - 1)];
        if (e.key === 'ArrowLeft' || e.key === 'ArrowDown') next = STAR_VALUES[Math.max(k - 1, 0)];
        if (next !== null) {
          e.preventDefault();
          e.stopPropagation();
          box.querySelector(`[data-value="${next}"]`).focus();
        }
      });
      star.appendChild(b);
    }
    box.appendChild(star);
  }
}

function renderStars(stars, box = $('stars'), valueEl = $('rating-value')) {
  for (const star of box.children) {
    const i = Number(star.dataset.star);
    star.classList.toggle('full', stars !== null && stars !== undefined && stars >= i);
    star.classList.toggle('halfway', stars !== null && stars !== undefined && stars === i - 0.5);
  }
  let focusable = false;
  for (const b of box.querySelectorAll('button')) {
    const checked = stars !== null && stars !== undefined && Number(b.dataset.value) === stars;
    b.setAttribute('aria-checked', String(checked));
    b.tabIndex = checked ? 0 : -1;
    focusable = focusable || checked;
  }
  if (!focusable) box.querySelector('button').tabIndex = 0;
  if (valueEl) valueEl.textContent = stars ? `${stars} of 5` : 'not rated';
}

// Rating ids grow with time. True (and remembered) when this rating of its track is the
// newest the page has seen; replies and events can arrive in either order.
const newestRatingIds = new Map();
function newestRating(r) {
  if (typeof r.rating_id !== 'number') return true;
  if (r.rating_id < (newestRatingIds.get(r.track_id) ?? -1)) return false;
  newestRatingIds.set(r.track_id, r.rating_id);
  return true;
}

async function rate(stars) {
  if (studyOpen()) return studyRate(stars);
  const t = currentTrack();
  if (!t) return say('Nothing to rate: play a track first.', 'error');
  const r = await attempt('Rating', () => rpc('rate', { track_id: t.id, stars }));
  if (!r) return;
  // A newer rating of this track (made elsewhere) may have arrived as an event while this
  // call was under way: don't put the older one back on screen.
  if (!newestRating(r)) return;
  state.rating = r.stars;
  state.ratingTrack = r.track_id;
  t.stars = r.stars;
  const listed = trackById(t.id);
  if (listed) listed.stars = r.stars;
  renderNowPlaying();
  renderIterations();
  say(`Rated track ${t.id}: ${stars} star${stars === 1 ? '' : 's'}.`);
}

// ------------------------------------------------------------------ daemon playback

async function refreshStatus() {
  try {
    state.status = await rpc('status');
  } catch (err) {
    return say(explain(err, 'Status'), 'error');
  }
  if (state.where === 'daemon') {
    $('volume').value = String(state.status.volume);
    const t = state.status.track;
    if (t && t.id !== state.ratingTrack) {
      state.rating = t.stars;
      state.ratingTrack = t.id;
    }
  }
  renderNowPlaying();
  renderLoop(state.status.loop);
}

// What the loop does when no progress event has come yet: a job that was already running
// when the page opened, or why no iteration starts ("waiting: 3 of 8 …").
function renderLoop(loop) {
  if (!loop) return;
  if (loop.job && !state.job) showJob({ ...loop.job, state: 'running' });
  if (!loop.job) $('job-idle').textContent = loop.state === 'idle' ? 'No job running.' : `No job running (${loop.text}).`;
}

// ------------------------------------------------------------------ browser playback

function buildBrowserQueue() {
  const active = state.status && state.status.iteration ? state.status.iteration.id : null;
  const oldestFirst = [...state.tracks].reverse();
  const first = oldestFirst.filter((t) => active !== null && t.iteration_id === active);
  const rest = oldestFirst.filter((t) => !(active !== null && t.iteration_id === active));
  state.browserQueue = [...first, ...rest].map((t) => t.id);
}

// Seconds that actually played: forward steps between timeupdates while playing;
// pauses, seeks and stalls add nothing.
function accountListen() {
  const a = $('audio'), l = state.listen;
  if (!l) return;
  const now = a.currentTime;
  if (!a.paused && !a.seeking) {
    const step = now - l.last;
    if (step > 0 && step < 1.5 * (a.playbackRate || 1)) l.heard += step;
  }
  l.last = now;
}

async function reportListen(ended) {
  const l = state.listen;
  state.listen = null;
  if (!l || (l.heard <= 0 && ended !== 'completed')) return;
  const a = $('audio');
  const params = { track_id: l.trackId, seconds_heard: Math.round(l.heard * 1000) / 1000, ended };
  if (Number.isFinite(a.duration) && a.duration > 0) params.duration = a.duration;
  await attempt('Reporting the listen', () => rpc('listen.report', params));
}

async function browserPlayIndex(index) {
  if (state.listen) await reportListen('skipped');
  if (!state.browserQueue.length) {
    state.tracks = (await attempt('Tracks', () => rpc('tracks.list'))) || state.tracks;
    buildBrowserQueue();
  }
  if (!state.browserQueue.length) return say('Nothing to play yet: no tracks.', 'error');
  const n = state.browserQueue.length;
  state.browserIndex = ((index % n) + n) % n;
  const t = trackById(state.browserQueue[state.browserIndex]);
  state.browserTrack = t;
  state.rating = t.stars;
  state.ratingTrack = t.id;
  const a = $('audio');
  a.src = withToken(`/tracks/${t.id}/audio`);
  a.volume = Number($('volume').value);
  state.listen = { trackId: t.id, heard: 0, last: 0 };
  renderNowPlaying();
  try {
    await a.play();
  } catch (err) {
    say(`The browser would not play: ${err.message}`, 'error');
  }
}

function setupAudio() {
  const a = $('audio');
  a.addEventListener('timeupdate', () => { accountListen(); renderNowPlaying(); });
  a.addEventListener('pause', () => { accountListen(); renderNowPlaying(); });
  a.addEventListener('play', () => { if (state.listen) state.listen.last = a.currentTime; renderNowPlaying(); });
  a.addEventListener('seeking', () => { accountListen(); });
  a.addEventListener('seeked', () => { if (state.listen) state.listen.last = a.currentTime; });
  a.addEventListener('ended', async () => {
    if (state.listen) {
      const rest = a.duration - state.listen.last;
      if (rest > 0 && rest < 1.5) state.listen.heard += rest;
    }
    await reportListen('completed');
    // Carry on through the queue, but never loop straight back to a track just heard.
    if (state.browserIndex + 1 >= state.browserQueue.length) {
      const heard = new Set(state.browserQueue);
      state.tracks = (await attempt('Tracks', () => rpc('tracks.list'))) || state.tracks;
      buildBrowserQueue();
      const fresh = state.browserQueue.findIndex((id) => !heard.has(id));
      if (fresh < 0) return renderNowPlaying();
      state.browserIndex = fresh - 1;
    }
    browserPlayIndex(state.browserIndex + 1);
  });
  // A closing tab still reports what was heard.
  window.addEventListener('pagehide', () => {
    const l = state.listen;
    if (!l || l.heard <= 0) return;
    accountListen();
    navigator.sendBeacon('/rpc', JSON.stringify({
      jsonrpc: '2.0', id: ++rpcId, method: 'listen.report',
      params: { track_id: l.trackId, seconds_heard: l.heard, ended: 'stopped' },
    }));
  });
}

// ------------------------------------------------------------------ controls

const player = {
  async play() {
    if (state.where === 'browser') {
      const a = $('audio');
      if (state.browserTrack && a.paused && !a.ended) return a.play();
      return browserPlayIndex(state.browserIndex < 0 ? 0 : state.browserIndex);
    }
    await attempt('Play', () => rpc('player.play'));
    return refreshStatus();
  },
  async pause() {
    if (state.where === 'browser') return $('audio').pause();
    await attempt('Pause', () => rpc('player.pause'));
    return refreshStatus();
  },
  async toggle() {
    const playing = state.where === 'browser' ? !$('audio').paused
      : state.status && state.status.state === 'playing';
    return playing ? player.pause() : player.play();
  },
  async next() {
    if (state.where === 'browser') return browserPlayIndex(state.browserIndex + 1);
    await attempt('Next', () => rpc('player.next'));
    return refreshStatus();
  },
  async previous() {
    if (state.where === 'browser') return browserPlayIndex(state.browserIndex - 1);
    await attempt('Previous', () => rpc('player.previous'));
    return refreshStatus();
  },
  async skip() {
    const t = currentTrack();
    if (t) say(`Skipped track ${t.id}.`);
    return player.next();  // an early end is recorded as a skip by the daemon's rule
  },
  async seek(seconds) {
    if (state.where === 'browser') {
      $('audio').currentTime = seconds;
      return;
    }
    await attempt('Seek', () => rpc('player.seek', { seconds }));
    return refreshStatus();
  },
  async volume(level) {
    if (state.where === 'browser') {
      $('audio').volume = level;
      return;
    }
    await attempt('Volume', () => rpc('player.volume', { level }));
  },
};

async function setWhere(where, remember = true) {
  if (where === state.where) return;
  // The choice holds from the moment it is made: a Play pressed while the other side is
  // still being stopped (a round trip to the daemon) plays where the listener chose.
  const daemonWasPlaying = state.status && state.status.state === 'playing';
  state.where = where;
  $('where-' + where).checked = true;
  if (remember) localStorage.setItem('tuneloop.where', where);
  if (where === 'daemon') {
    $('audio').pause();
    await reportListen('stopped');
  } else if (daemonWasPlaying) {
    await attempt('Pause', () => rpc('player.pause'));
  }
  await refreshStatus();
}

function setupControls() {
  $('btn-play').addEventListener('click', () => player.play());
  $('btn-pause').addEventListener('click', () => player.pause());
  $('btn-next').addEventListener('click', () => player.next());
  $('btn-prev').addEventListener('click', () => player.previous());
  $('btn-skip').addEventListener('click', () => player.skip());
  $('seek').addEventListener('change', (e) => player.seek(Number(e.target.value)));
  $('volume').addEventListener('input', (e) => player.volume(Number(e.target.value)));
  for (const r of document.querySelectorAll('input[name="where"]'))
    r.addEventListener('change', (e) => setWhere(e.target.value));
  $('btn-iterate').addEventListener('click', iterateNow);
  $('upload-form').addEventListener('submit', upload);

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const el = document.activeElement;
    const typing = el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT');
    // Digits rate even from a slider or radio, but not while typing text (a study's name).
    const typingText = el && (el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' &&
      ['text', 'number', 'search', 'file'].includes(el.type)));
    const digit = /^Digit([1-5])$/.exec(e.code);
    if (digit && !typingText) {
      e.preventDefault();
      const n = Number(digit[1]);
      return rate(e.shiftKey && n > 1 ? n - 0.5 : n);
    }
    if (typing) return;
    const key = e.key.toLowerCase();
    if (studyOpen()) {
      // Only the study's own controls: the player's keys would name or skip library tracks.
      if (key === ' ' && !(el && el.tagName === 'BUTTON')) { e.preventDefault(); studyToggle(); }
      else if (key === 's') studyRate(null);
      return;
    }
    if (key === ' ' && !(el && el.tagName === 'BUTTON')) { e.preventDefault(); player.toggle(); }
    else if (key === 'n') player.next();
    else if (key === 'p') player.previous();
    else if (key === 's') player.skip();
    else if (key === 'arrowright' || key === 'arrowleft') {
      const pos = Number($('seek').value) + (key === 'arrowright' ? 5 : -5);
      player.seek(Math.max(0, pos));
    }
  });
}

// ------------------------------------------------------------------ songs

async function refreshSongs() {
  const songs = await attempt('Songs', () => rpc('songs.list'));
  if (!songs) return;
  const ul = $('songs-list');
  ul.replaceChildren();
  for (const s of songs) {
    const li = document.createElement('li');
    li.textContent = `${s.original_name || s.path.split('/').pop()} (${fmtTime(s.duration)})`;
    ul.appendChild(li);
  }
}

async function upload(e) {
  e.preventDefault();
  const files = $('song-files').files;
  if (!files.length) return say('Choose one or more audio files first.', 'error');
  const form = new FormData();
  for (const f of files) form.append('files', f, f.name);
  $('btn-upload').disabled = true;
  try {
    const res = await fetch('/upload', { method: 'POST', body: form, headers: AUTH });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).trim()}`);
    const { results } = await res.json();
    const bad = results.filter((r) => r.error);
    const added = results.length - bad.length;
    if (bad.length)
      say(`Added ${added} song(s); not added: ${bad.map((r) => `${r.file} (${r.error.message})`).join('; ')}`, 'error');
    else say(`Added ${added} song(s).`);
    $('upload-form').reset();
    refreshSongs();
  } catch (err) {
    say(`Adding songs: ${err.message}`, 'error');
  } finally {
    $('btn-upload').disabled = false;
  }
}

// ------------------------------------------------------------------ iterations

async function refreshIterations() {
  const [tracks, iterations] = await Promise.all([
    rpc('tracks.list').catch((err) => { say(explain(err, 'Tracks'), 'error'); return null; }),
    rpc('iterations.list').catch((err) => {
      if (err.code !== METHOD_NOT_FOUND) say(explain(err, 'Iterations'), 'error');
      return err.code === METHOD_NOT_FOUND ? null : undefined;
    }),
  ]);
  if (tracks) state.tracks = tracks;
  if (iterations !== undefined) {
    const list = iterations && !Array.isArray(iterations) ? iterations.iterations : iterations;
    state.iterations = Array.isArray(list) ? list : null;
  }
  const note = $('iterations-note');
  note.hidden = state.iterations !== null;
  note.textContent = 'The learning loop is not available in this daemon yet (no “iterations.list”): ' +
    'ratings are grouped by the iteration each track came from.';
  if (state.where === 'browser' && !state.browserQueue.length) buildBrowserQueue();
  renderIterations();
  renderNowPlaying();
}

// Mean rating per iteration from the tracks' current ratings.
function iterationRows() {
  const byIteration = new Map();
  const row = (key) => {
    if (!byIteration.has(key)) byIteration.set(key, { id: key, number: null, status: '', active: false, sum: 0, rated: 0, tracks: 0 });
    return byIteration.get(key);
  };
  for (const it of state.iterations || []) {
    const r = row(it.id);
    r.number = it.number;
    r.status = it.status || '';
    r.active = !!it.active;
  }
  for (const t of state.tracks) {
    const r = row(t.iteration_id === null || t.iteration_id === undefined ? 'base' : t.iteration_id);
    r.tracks++;
    if (typeof t.stars === 'number') { r.sum += t.stars; r.rated++; }
  }
  const rows = [...byIteration.values()];
  for (const r of rows) if (r.id === 'base' && r.number === null) r.number = 0;
  rows.sort((a, b) => (a.number ?? 1e9) - (b.number ?? 1e9) || String(a.id).localeCompare(String(b.id)));
  for (const r of rows) r.mean = r.rated ? r.sum / r.rated : null;
  return rows;
}

function renderIterations() {
  renderStudyIterations();
  const body = $('iterations-body');
  body.replaceChildren();
  if (studyOpen()) {
    $('chart').replaceChildren();
    return;
  }
  const rows = iterationRows();
  for (const r of rows) {
    const tr = document.createElement('tr');
    if (r.active) tr.className = 'active';
    const cells = [
      r.id === 'base' ? '0 (base)' : r.number ?? `#${r.id}`,
      r.active ? `${r.status || 'ready'} · active` : r.status || (r.id === 'base' ? 'base model' : ''),
      r.mean === null ? '–' : r.mean.toFixed(2),
      `${r.rated}/${r.tracks}`,
    ];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = String(c);
      tr.appendChild(td);
    }
    const td = document.createElement('td');
    if (r.id !== 'base' && !r.active && state.iterations !== null) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'small';
      b.textContent = 'Roll back';
      b.setAttribute('aria-label', `Roll back to iteration ${r.number}`);
      b.addEventListener('click', () => rollBack(r));
      td.appendChild(b);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  }
  drawChart(rows.filter((r) => r.mean !== null));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawChart(rows) {
  const box = $('chart');
  box.replaceChildren();
  const W = 320, H = 160, L = 28, R = 10, T = 10, B = 24;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg' });
  const summary = rows.length
    ? 'Mean rating per iteration: ' + rows.map((r) => `iteration ${r.number ?? r.id}: ${r.mean.toFixed(2)}`).join(', ')
    : 'No ratings yet';
  root.appendChild(svg('title', {}, summary));
  root.setAttribute('aria-label', summary);
  const y = (v) => T + (H - T - B) * (1 - (v - 1) / 4);
  for (let v = 1; v <= 5; v++) {
    root.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    root.appendChild(svg('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
  }
  if (!rows.length) {
    root.appendChild(svg('text', { x: (L + W - R) / 2, y: H / 2, class: 'axis', 'text-anchor': 'middle' }, 'rate some tracks to see the trend'));
    box.appendChild(root);
    return;
  }
  const step = (W - L - R) / rows.length;
  const x = (i) => L + step * (i + 0.5);
  const points = rows.map((r, i) => `${x(i)},${y(r.mean)}`).join(' ');
  rows.forEach((r, i) => {
    const w = Math.min(36, step * 0.6);
    root.appendChild(svg('rect', { x: x(i) - w / 2, y: y(r.mean), width: w, height: H - B - y(r.mean), class: r.active ? 'bar active' : 'bar' }));
    root.appendChild(svg('text', { x: x(i), y: H - 8, class: 'axis', 'text-anchor': 'middle' }, String(r.number ?? r.id)));
    root.appendChild(svg('text', { x: x(i), y: y(r.mean) - 4, class: 'value', 'text-anchor': 'middle' }, r.mean.toFixed(1)));
  });
  if (rows.length > 1) root.appendChild(svg('polyline', { points, class: 'trend' }));
  box.appendChild(root);
}

async function iterateNow() {
  const r = await attempt('Starting the next iteration', () => rpc('iterate', {}));
  if (r === undefined) {
    refreshStatus();  // shows why (e.g. the model is unavailable) under "Learning"
    return;
  }
  if (!r.started) {
    say(`Not started: ${r.reason}`);
    return;
  }
  say('The next iteration has started; its progress shows above.');
  showJob({ progress: 0, phase: 'start' });
}

async function rollBack(row) {
  const r = await attempt(`Rolling back to iteration ${row.number}`, () => rpc('iterations.activate', { id: row.id }));
  if (r !== undefined) {
    say(`Iteration ${row.number} is active again.`);
    refreshIterations();
  }
}

// ------------------------------------------------------------------ jobs

const PHASES = {
  start: 'Starting', load: 'Loading the model', encode: 'Encoding the dataset', train: 'Fine-tuning',
  evaluate: 'Fine-tuning', save: 'Saving the adapter', generate: 'Generating tracks',
};

function showJob(p) {
  if (p.state === 'failed' || p.state === 'cancelled') {
    hideJob();
    if (!studyOpen()) say(p.state === 'cancelled' ? 'The iteration was cancelled.' : `The iteration failed: ${p.error || 'see the daemon log'}`,
      p.state === 'cancelled' ? 'info' : 'error');
    refreshSoon();
    return;
  }
  const now = performance.now();
  const progress = Math.max(0, Math.min(1, Number(p.progress) || 0));
  if (!state.job || progress < state.job.progress) state.job = { started: now, startProgress: progress, progress };
  state.job.progress = progress;
  $('job').hidden = false;
  $('job-idle').hidden = true;
  $('job-label').textContent = PHASES[p.phase] || (p.state === 'done' ? 'Done' : 'Working');
  $('job-progress').value = progress;
  $('job-progress').setAttribute('aria-valuetext', `${Math.round(progress * 100)} percent`);
  let eta = Number.isFinite(p.eta_s) ? p.eta_s : null;
  if (eta === null && progress > state.job.startProgress) {
    const rate = (progress - state.job.startProgress) / ((now - state.job.started) / 1000);
    if (rate > 0) eta = (1 - progress) / rate;
  }
  const parts = [`${Math.round(progress * 100)} %`];
  if (progress < 1 && eta !== null) parts.push(`about ${fmtDuration(eta)} left`);
  if (p.phase === 'train' && p.total) parts.push(`step ${p.step} of ${p.total}`);
  if (p.phase === 'generate' && p.total) parts.push(`track ${p.step + 1} of ${p.total}`);
  if (p.message) parts.push(p.message);
  $('job-text').textContent = parts.join(' — ');
  if (progress >= 1) setTimeout(() => { if (state.job && state.job.progress >= 1) hideJob(); }, 5000);
}

function hideJob() {
  state.job = null;
  $('job').hidden = true;
  $('job-idle').hidden = false;
}

// ------------------------------------------------------------------ events

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshIterations, 300);
}

function connectEvents() {
  const es = new EventSource(withToken('/events'));
  es.onopen = () => {
    $('connection').textContent = 'connected';
    $('connection').className = 'connection ok';
  };
  es.onerror = () => {
    $('connection').textContent = 'reconnecting…';
    $('connection').className = 'connection bad';
  };
  es.onmessage = (e) => {
    let note;
    try { note = JSON.parse(e.data); } catch { return; }
    const p = note.params || {};
    switch (note.method) {
      case 'track.started':
      case 'state.changed':
        refreshStatus();
        break;
      case 'track.ended':
        refreshStatus();
        refreshSoon();
        break;
      case 'rating.recorded': {
        if (!newestRating(p)) break;
        const t = trackById(p.track_id);
        if (t) t.stars = p.stars;
        if (p.track_id === state.ratingTrack) state.rating = p.stars;
        const cur = currentTrack();
        if (cur && cur.id === p.track_id) cur.stars = p.stars;
        renderNowPlaying();
        renderIterations();
        break;
      }
      case 'song.added':
        refreshSongs();
        break;
      case 'job.progress':
        showJob(p);
        break;
      case 'iteration.ready':
        hideJob();
        if (!studyOpen()) say(`Iteration ${p.number ?? ''} is ready: new tracks are queued.`);
        refreshIterations();
        break;
      default:
        break;
    }
  };
}

// ------------------------------------------------------------------ study

// A human study (docs/protocol.md "Study methods"): a blinded, shuffled playlist of tracks
// from chosen iterations. While a session is open the page shows only each track's code:
// the listening view (iterations, track names, files) is hidden and left empty.
const STUDY_KEY = 'tuneloop.study';
const study = {
  list: [],          // study.list
  open: null,        // { id, name, total, item: {code, duration, …} | null, finished }
  heard: 0,          // seconds of the current item played in the browser
  last: 0,
  onDaemon: false,   // the current item was started with study.play
  busy: false,
};

function studyOpen() {
  return document.body.classList.contains('study-open');
}

function showView(view) {
  const isStudy = view === 'study';
  if (!isStudy && studyOpen()) {
    say('Close the study session first: the listening view shows iterations and track names.', 'error');
    return;
  }
  $('view-listen').hidden = isStudy;
  $('view-study').hidden = !isStudy;
  $('tab-listen').setAttribute('aria-selected', String(!isStudy));
  $('tab-study').setAttribute('aria-selected', String(isStudy));
  if (isStudy) refreshStudies();
}

async function refreshStudies() {
  const list = await attempt('Studies', () => rpc('study.list'));
  if (!list) return;
  study.list = list;
  renderStudyList();
}

function renderStudyList() {
  const body = $('study-list-body');
  body.replaceChildren();
  $('study-list-empty').hidden = study.list.length > 0;
  $('study-table').hidden = study.list.length === 0;
  for (const s of [...study.list].reverse()) {
    const tr = document.createElement('tr');
    tr.dataset.studyId = String(s.study_id);
    for (const c of [s.name, s.participant, s.status, `${s.answered}/${s.total}`]) {
      const td = document.createElement('td');
      td.textContent = String(c);
      tr.appendChild(td);
    }
    const td = document.createElement('td');
    const button = (label, cls, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `small ${cls}`;
      b.textContent = label;
      b.setAttribute('aria-label', `${label} study “${s.name}”`);
      b.addEventListener('click', fn);
      td.appendChild(b);
    };
    if (s.status === 'running') {
      button('Open', 'study-open-btn', () => openStudy(s.study_id));
      button('Finish', 'study-finish-btn', () => finishFromList(s));
    }
    if (s.answered > 0) button('Export', 'study-export-btn', () => exportFromList(s));
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

// The study form's iteration choices (the researcher's view, before a session opens).
function renderStudyIterations() {
  const box = $('study-iterations');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  box.replaceChildren();
  const its = (state.iterations || []).filter((i) => i.status !== 'deleted' && Number.isInteger(i.number));
  if (!its.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = state.iterations === null ? 'This daemon lists no iterations.' : 'No iterations yet.';
    box.appendChild(p);
    return;
  }
  for (const it of [...its].sort((a, b) => a.number - b.number)) {
    const label = document.createElement('label');
    label.className = 'check';
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = String(it.number);
    input.id = `study-it-${it.number}`;
    input.checked = checked.has(input.value);
    label.append(input, ` iteration ${it.number}${it.status && it.status !== 'ready' ? ` (${it.status})` : ''}`);
    box.appendChild(label);
  }
}

async function startStudy(e) {
  e.preventDefault();
  const name = $('study-name').value.trim();
  if (!name) return say('Starting the study: give it a name.', 'error');
  const params = { name, tracks_per_iteration: Math.max(0, Math.floor(Number($('study-per-iteration').value) || 0)) };
  const participant = $('study-participant').value.trim();
  if (participant) params.participant = participant;
  const iterations = [...$('study-iterations').querySelectorAll('input:checked')].map((i) => Number(i.value));
  if (iterations.length) params.iterations = iterations;
  $('btn-study-start').disabled = true;
  try {
    const r = await attempt('Starting the study', () => rpc('study.start', params));
    if (!r) return;
    $('study-form').reset();
    await openStudy(r.study_id, r);
  } finally {
    $('btn-study-start').disabled = false;
  }
}

// Opens a running study's session: `started` is study.start's result, else it is asked for.
async function openStudy(id, started) {
  const s = started || await attempt('Opening the study', () => rpc('study.status', { study_id: id }));
  const next = s && s.status === 'running' &&
    (started ? started.next : await attempt('Opening the study', () => rpc('study.next', { study_id: id })));
  if (!next) {
    if (s && s.status !== 'running') say(`Study “${s.name}” is ${s.status}: it takes no more ratings.`, 'error');
    return closeStudy();
  }
  // Whatever the listening view was playing stops, and its names leave the page.
  document.body.classList.add('study-open');
  if (state.where === 'browser' && !$('audio').paused) {
    $('audio').pause();
    await reportListen('stopped');
  } else if (state.where === 'daemon' && state.status && state.status.state === 'playing') {
    await attempt('Pause', () => rpc('player.pause'));
  }
  renderNowPlaying();
  renderIterations();
  study.open = { id: s.study_id, name: s.name, total: s.total, item: null, finished: false };
  sessionStorage.setItem(STUDY_KEY, String(s.study_id));
  $('tab-listen').disabled = true;
  $('tab-listen').title = 'Close the study session first';
  showView('study');
  $('study-setup').hidden = true;
  $('study-new').hidden = true;
  $('study-session').hidden = false;
  $('study-result').hidden = true;
  $('study-session-name').textContent = `“${s.name}”`;
  renderStudyItem(next);
}

async function closeStudy() {
  await stopStudyAudio();
  study.open = null;
  sessionStorage.removeItem(STUDY_KEY);
  document.body.classList.remove('study-open');
  $('tab-listen').disabled = false;
  $('tab-listen').title = '';
  $('study-session').hidden = true;
  $('study-setup').hidden = false;
  $('study-new').hidden = false;
  await Promise.all([refreshStudies(), refreshIterations(), refreshStatus()]);
}

// `next`: a study.next-shaped item, or null / {done: true} when every track is answered.
function renderStudyItem(next) {
  const o = study.open;
  const done = !next || next.done;
  o.item = done ? null : { code: next.code, duration: next.duration || 0 };
  study.heard = 0;
  study.last = 0;
  $('study-item').hidden = done;
  $('study-done').hidden = done ? o.finished : true;
  if (done) {
    $('study-done-text').textContent = `All ${o.total} tracks are answered. Finish the study to close it for ratings; export writes events.csv, summary.json, report.md and plots.`;
    return;
  }
  $('study-code').textContent = next.code;
  $('study-progress').textContent = `${next.total - next.remaining + 1} of ${next.total}`;
  renderStars(null, $('study-stars'), null);
  renderStudyTime();
}

function renderStudyTime() {
  const o = study.open;
  if (!o || !o.item) return;
  const a = $('study-audio');
  const mine = a.dataset.code === o.item.code;
  const duration = mine && Number.isFinite(a.duration) ? a.duration : o.item.duration;
  $('study-time').textContent = `${fmtTime(mine ? a.currentTime : 0)} / ${fmtTime(duration)}`;
}

// The blinded copy for the browser: the daemon serves it by study and code, never by track.
function studyAudioUrl(id, code) {
  return `/studies/${id}/audio/${encodeURIComponent(code)}`;
}

async function studyPlay() {
  const o = study.open;
  if (!o || !o.item) return;
  const code = o.item.code;
  if (state.where === 'daemon') {
    const r = await attempt('Playing the study track', () => rpc('study.play', { study_id: o.id, code }));
    if (r) {
      study.onDaemon = true;
      say(`Playing ${r.code} on this computer.`);
    }
    return;
  }
  const a = $('study-audio');
  if (a.dataset.code !== code) {
    a.src = withToken(studyAudioUrl(o.id, code));
    a.dataset.code = code;
    a.volume = Number($('volume').value);
  }
  try {
    await a.play();
  } catch (err) {
    await explainStudyAudio(o.id, code, err);
  }
}

async function explainStudyAudio(id, code, err) {
  let status = 0;
  try {
    status = (await fetch(studyAudioUrl(id, code), { headers: { Range: 'bytes=0-0', ...AUTH } })).status;
  } catch { /* the message below says what the browser said */ }
  if (status === 404)
    say(`Playing the study track: the daemon has no audio for it (GET ${studyAudioUrl(id, code)}: 404). ` +
      'Choose “on this computer” in the Listen view before opening the study, or play it with `tuneloop study play`.', 'error');
  else say(`Playing the study track: the browser would not play it (${err.message}).`, 'error');
}

async function studyPause() {
  if (state.where === 'daemon') {
    if (study.onDaemon) await attempt('Pause', () => rpc('player.pause'));
    return;
  }
  $('study-audio').pause();
}

function studyToggle() {
  const a = $('study-audio');
  if (state.where === 'browser' && !a.paused) return studyPause();
  if (state.where === 'daemon' && study.onDaemon) return studyPause();
  return studyPlay();
}

async function stopStudyAudio() {
  const a = $('study-audio');
  accountStudyListen();
  a.pause();
  a.removeAttribute('src');
  delete a.dataset.code;
  a.load();
  if (study.onDaemon) {
    study.onDaemon = false;
    await rpc('player.stop').catch(() => {});
  }
}

// Seconds that actually played, counted as for library tracks (accountListen).
function accountStudyListen() {
  const a = $('study-audio');
  const o = study.open;
  if (!o || !o.item || a.dataset.code !== o.item.code) return;
  const now = a.currentTime;
  if (!a.paused) {
    const step = now - study.last;
    if (step > 0 && step < 1.5 * (a.playbackRate || 1)) study.heard += step;
  }
  study.last = now;
}

// stars: 1–5 in half steps, or null to skip. The answer moves on to the next track.
async function studyRate(stars) {
  const o = study.open;
  if (!o || !o.item || study.busy) return;
  study.busy = true;
  $('study-item').setAttribute('aria-busy', 'true');
  try {
    const params = { study_id: o.id, code: o.item.code };
    if (stars === null) params.skip = true;
    else params.stars = stars;
    accountStudyListen();
    if (study.heard > 0) params.seconds_heard = Math.round(study.heard * 1000) / 1000;
    const r = await attempt(stars === null ? 'Skipping' : 'Rating', () => rpc('study.rate', params));
    if (!r) return;
    await stopStudyAudio();
    say(stars === null ? `Skipped ${r.code}.` : `${r.code}: ${stars} star${stars === 1 ? '' : 's'}.`);
    renderStudyItem(r.next);
  } finally {
    study.busy = false;
    $('study-item').removeAttribute('aria-busy');
  }
}

function safeName(name) {
  return name.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 40);
}

// The folder typed in, else DATA/studies/exports/NAME-ID (the daemon checks it is absolute).
function exportFolder(input, s) {
  const typed = input.value.trim();
  if (typed) return typed;
  const data = state.status && state.status.data_dir;
  return data ? `${data}/studies/exports/${safeName(s.name)}-${s.id}` : '';
}

function showExport(box, head, r) {
  box.replaceChildren();
  const p = document.createElement('p');
  p.className = 'study-finished';
  p.textContent = head;
  box.appendChild(p);
  if (r) {
    const q = document.createElement('p');
    q.textContent = `Exported ${r.ratings} rating${r.ratings === 1 ? '' : 's'} to ${r.out}:`;
    const ul = document.createElement('ul');
    ul.className = 'study-files';
    for (const f of r.files) {
      const li = document.createElement('li');
      const c = document.createElement('code');
      c.textContent = f;
      li.appendChild(c);
      ul.appendChild(li);
    }
    box.append(q, ul);
  }
  box.hidden = false;
}

async function finishStudy(exportToo) {
  const o = study.open;
  if (!o || o.finished || study.busy) return;
  study.busy = true;
  try {
    let exported = null;
    // Export first: a wrong folder should not end the study before anything is written.
    if (exportToo) {
      exported = await attempt('Exporting the study', () => rpc('study.export',
        { study_id: o.id, out: exportFolder($('study-out'), o), plots: $('study-plots').checked }));
      if (!exported) return;
    }
    const f = await attempt('Finishing the study', () => rpc('study.finish', { study_id: o.id }));
    if (!f) return;
    o.finished = true;
    $('study-done').hidden = true;
    showExport($('study-result'), `Study “${f.name}” is ${f.status}: ${f.answered} of ${f.total} answered.`, exported);
    say(`Study “${f.name}” is ${f.status}.`);
  } finally {
    study.busy = false;
  }
}

async function finishFromList(s) {
  const f = await attempt('Finishing the study', () => rpc('study.finish', { study_id: s.study_id }));
  if (!f) return;
  showExport($('study-list-result'), `Study “${f.name}” is ${f.status}: ${f.answered} of ${f.total} answered.`, null);
  refreshStudies();
}

async function exportFromList(s) {
  const r = await attempt('Exporting the study', () => rpc('study.export',
    { study_id: s.study_id, out: exportFolder($('study-list-out'), { id: s.study_id, name: s.name }) }));
  if (r) showExport($('study-list-result'), `Study “${s.name}” (${s.status}).`, r);
}

function setupStudy() {
  $('tab-listen').addEventListener('click', () => showView('listen'));
  $('tab-study').addEventListener('click', () => showView('study'));
  $('study-form').addEventListener('submit', startStudy);
  $('btn-study-play').addEventListener('click', () => studyPlay());
  $('btn-study-pause').addEventListener('click', () => studyPause());
  $('btn-study-skip').addEventListener('click', () => studyRate(null));
  $('btn-study-finish').addEventListener('click', () => finishStudy(true));
  $('btn-study-finish-only').addEventListener('click', () => finishStudy(false));
  $('btn-study-close').addEventListener('click', () => closeStudy());
  const a = $('study-audio');
  a.addEventListener('timeupdate', () => { accountStudyListen(); renderStudyTime(); });
  a.addEventListener('pause', () => { accountStudyListen(); renderStudyTime(); });
  a.addEventListener('play', () => { study.last = a.currentTime; });
  a.addEventListener('seeking', () => accountStudyListen());
  a.addEventListener('seeked', () => { study.last = a.currentTime; });
  a.addEventListener('ended', () => {
    const rest = a.duration - study.last;
    if (rest > 0 && rest < 1.5) study.heard += rest;
    study.last = a.duration;
    renderStudyTime();
  });
}

// ------------------------------------------------------------------ start

async function start() {
  // A study session that was open before a reload: blind the page before anything shows.
  const openStudyId = Number(sessionStorage.getItem(STUDY_KEY)) || null;
  if (openStudyId) document.body.classList.add('study-open');
  buildStars($('stars'), rate);
  buildStars($('study-stars'), studyRate);
  setupAudio();
  setupControls();
  setupStudy();
  await refreshStatus();
  const saved = localStorage.getItem('tuneloop.where');
  const audioOk = state.status && state.status.audio && state.status.audio.available;
  const where = saved || (audioOk ? 'daemon' : 'browser');
  state.where = where === 'browser' ? 'browser' : 'daemon';
  $('where-' + state.where).checked = true;
  if (!audioOk && state.where === 'daemon')
    say('The daemon has no sound card; choose “in the browser” to listen here.', 'error');
  await Promise.all([refreshIterations(), refreshSongs()]);
  if (openStudyId) await openStudy(openStudyId);
  connectEvents();
  // The daemon sends no event per second of playback; poll while it plays.
  setInterval(() => {
    if (state.where === 'daemon' && state.status && state.status.state === 'playing') refreshStatus();
  }, 1000);
  document.body.dataset.ready = 'true';
}

start();
