// The web player in a real browser (Debian's Chromium, driven by playwright-core) against
// a real tuneloopd: token and Host checks, playing in the browser, rating (checked in the
// database through the daemon), events, songs upload, and screenshots as artefacts.
//
// A second daemon, on tiny fixture weights, runs a fine-tune while the page watches the
// progress bar. A third, on fixture weights with a short fine-tune, makes iterations 0 and 1
// for a blinded human study run from the page (start, answer, finish, export). No daemon
// here ever loads the shipped model/weights.
//
// Environment: TUNELOOPD (the daemon binary), FIXTURE_WEIGHTS (tests/ui's
// ui_fixture_weights helper: writes the fixture model into a folder), CHROMIUM (default
// /usr/bin/chromium), UI_ARTEFACT_DIR (where screenshots go; default: the temp folder, kept).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TUNELOOPD = process.env.TUNELOOPD;
const FIXTURE_WEIGHTS = process.env.FIXTURE_WEIGHTS;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTEFACTS = process.env.UI_ARTEFACT_DIR || os.tmpdir();

let dir, port, token, daemon, daemonLog = '', context, page, wav;
let daemon2 = null, daemon3 = null;

function writeWav(file, seconds, rate = 16000, hz = 440) {
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + n * 2, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 2, 28); buf.writeUInt16LE(2, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  fs.writeFileSync(file, buf);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address();
      s.close(() => resolve(p));
    });
  });
}

// A raw request, so tests can send any Host header and path.
function request({ method = 'GET', path: p = '/', headers = {}, body, to = port } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: to, method, path: p, headers }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

let rpcId = 0;
async function rpc(method, params, { to = port, auth = token } = {}) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, ...(params ? { params } : {}) });
  const res = await request({
    method: 'POST', path: '/rpc', body, to,
    headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json' },
  });
  assert.equal(res.status, 200, `${method}: HTTP ${res.status} ${res.body}`);
  const reply = JSON.parse(res.body);
  if (reply.error) throw Object.assign(new Error(`${method}: ${reply.error.message}`), { code: reply.error.code });
  return reply.result;
}

async function until(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})\n--- daemon log ---\n${daemonLog}`);
}

// Waits until the page's message bar matches `re`; a timeout names what it said instead.
async function waitMessage(p, re, timeout = 15000) {
  try {
    await p.waitForFunction((src) => new RegExp(src).test(document.getElementById('message').textContent),
      re.source, { timeout });
  } catch (e) {
    throw new Error(`no message matching ${re}; the page says: "${await p.textContent('#message')}"\n${e.message}`);
  }
}

before(async () => {
  assert.ok(TUNELOOPD && fs.existsSync(TUNELOOPD), 'set TUNELOOPD to the tuneloopd binary');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tuneloop-ui-'));
  port = await freePort();
  wav = path.join(dir, 'tone.wav');
  writeWav(wav, 4);
  fs.mkdirSync(path.join(dir, 'no-weights'));
  fs.writeFileSync(path.join(dir, 'config.yaml'), [
    'paths:',
    `  data_dir: ${dir}/data`,
    `  socket: ${dir}/d.sock`,
    // Never the shipped model/weights: the test must not depend on what is committed there.
    `  weights_dir: ${dir}/no-weights`,
    'http:',
    `  port: ${port}`,
    'audio:',
    '  output: none',
    '',
  ].join('\n'));
  daemon = spawn(TUNELOOPD, ['--config', path.join(dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout.on('data', (d) => { daemonLog += d; });
  daemon.stderr.on('data', (d) => { daemonLog += d; });
  const urlFile = path.join(dir, 'data', 'ui-url');
  await until('the daemon to write ui-url', () => fs.existsSync(urlFile));
  token = fs.readFileSync(path.join(dir, 'data', 'ui-token'), 'utf8').trim();
  assert.equal(fs.statSync(path.join(dir, 'data', 'ui-token')).mode & 0o777, 0o600);
  const track = await rpc('tracks.add', { path: wav, tags: 'test' });
  assert.equal(track.id, 1);

  // A fresh profile per run (playwright passes it to Chromium as --user-data-dir).
  context = await chromium.launchPersistentContext(path.join(dir, 'chromium'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') daemonLog += `[browser] ${m.text()}\n`; });
});

after(async () => {
  if (context) await context.close();
  for (const d of [daemon, daemon2 && daemon2.proc, daemon3 && daemon3.proc]) {
    if (d && d.exitCode === null) {
      d.kill('SIGTERM');
      await new Promise((r) => d.once('exit', r));
    }
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the data need the token; the page itself does not, but a wrong token on it is refused', async () => {
  assert.equal((await request({ path: '/' })).status, 200);
  assert.equal((await request({ path: '/?token=' + 'f'.repeat(64) })).status, 401);
  assert.equal((await request({ path: '/events?token=' + 'f'.repeat(64) })).status, 401);
  assert.equal((await request({ method: 'POST', path: '/rpc', body: '{"jsonrpc":"2.0","id":1,"method":"status"}' })).status, 401);
  assert.equal((await request({ path: '/events' })).status, 401);
  assert.equal((await request({ path: '/tracks/1/audio' })).status, 401);
});

test('a Host header that is not a loopback name is refused even with the token', async () => {
  const res = await request({ path: `/?token=${token}`, headers: { Host: `rebind.example:${port}` } });
  assert.equal(res.status, 403);
  const ok = await request({ path: `/?token=${token}`, headers: { Host: `localhost:${port}` } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['set-cookie'], undefined, 'no cookie: browsers would send it to every port');
});

test('only files from the UI folder are served', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  assert.equal((await request({ path: '/app.js', headers: auth })).status, 200);
  for (const p of ['/../CMakeLists.txt', '/%2e%2e/CMakeLists.txt', '/..%2fCMakeLists.txt', '/.hidden', '//etc/passwd'])
    assert.equal((await request({ path: p, headers: auth })).status, 404, p);
});

test('the page loads with the token, plays in the browser and the listen is reported', async () => {
  await page.goto(`http://127.0.0.1:${port}/?token=${token}`);
  assert.equal(new URL(page.url()).search, '', 'the token leaves the address bar');
  assert.deepEqual(await context.cookies(), [], 'the token is kept by the page, not in a cookie');
  assert.equal(await page.evaluate(() => localStorage.getItem('tuneloop-token')), token);
  await page.waitForSelector('body[data-ready="true"]');
  // No sound card on the daemon: the page picks in-browser playback itself.
  assert.equal(await page.isChecked('#where-browser'), true);
  await page.click('#btn-play');
  await page.waitForFunction(() => document.getElementById('audio').currentTime > 1.0, null, { timeout: 15000 });
  assert.match(await page.textContent('#now-track'), /Track 1/);
  await page.click('#btn-pause');
  await page.click('#btn-skip');
  const plays = await until('a reported listen', async () => {
    const list = await rpc('plays.list', { track_id: 1 });
    return list.length ? list : null;
  });
  assert.equal(plays[0].source, 'external');
  assert.ok(plays[0].seconds_heard > 0.5 && plays[0].seconds_heard <= 4.0, `heard ${plays[0].seconds_heard}`);
  assert.equal(plays[0].reason, 'skipped');
});

test('clicking 4 stars records 4 stars in the database', async () => {
  await page.click('#stars button[data-value="4"]');
  await page.waitForFunction(() => document.getElementById('rating-value').textContent === '4 of 5');
  const ratings = await rpc('ratings.list', { track_id: 1 });
  assert.equal(ratings.at(-1).stars, 4);
  const [track] = (await rpc('tracks.list')).filter((t) => t.id === 1);
  assert.equal(track.stars, 4);
});

test('keys 1 to 5 rate, Shift takes half a star off', async () => {
  await page.locator('body').focus();
  await page.keyboard.press('2');
  await until('a rating of 2', async () => (await rpc('tracks.list'))[0].stars === 2);
  await page.keyboard.press('Shift+4');
  await until('a rating of 3.5', async () => (await rpc('tracks.list'))[0].stars === 3.5);
  await page.waitForFunction(() => document.getElementById('rating-value').textContent === '3.5 of 5');
});

test('a rating made elsewhere reaches the page as an event', async () => {
  await rpc('rate', { track_id: 1, stars: 4 });
  await page.waitForFunction(() => document.getElementById('rating-value').textContent === '4 of 5');
  assert.equal(await page.getAttribute('#stars button[data-value="4"]', 'aria-checked'), 'true');
  await page.waitForFunction(() => document.querySelectorAll('#chart rect.bar').length === 1);
});

test('playing on this computer without a sound card says so', async () => {
  await page.check('#where-daemon');
  await page.click('#btn-play');
  await page.waitForFunction(() => /no sound card/.test(document.getElementById('message').textContent));
  await page.check('#where-browser');
});

test('starting an iteration without a model says the model is unavailable', async () => {
  // This daemon's weights folder is empty: its model probe at start fails.
  await until('the loop to report the model unavailable', async () => (await rpc('loop.status')).state === 'unavailable');
  await page.click('#btn-iterate');
  await page.waitForFunction(() => /the model could not do it \(iterate: model unavailable/.test(document.getElementById('message').textContent));
  await page.waitForFunction(() => /model unavailable/.test(document.getElementById('job-idle').textContent));
  assert.equal(await page.isHidden('#job'), true);
  assert.deepEqual(await rpc('iterations.list'), []);
});

test('songs added through the page are stored', async () => {
  await page.setInputFiles('#song-files', wav);
  await page.click('#btn-upload');
  await page.waitForFunction(() => document.querySelectorAll('#songs-list li').length === 1);
  await page.waitForFunction(() => /Added 1 song/.test(document.getElementById('message').textContent));
  const songs = await rpc('songs.list');
  assert.equal(songs.length, 1);
  assert.equal(songs[0].original_name, 'tone.wav');
  assert.ok(fs.existsSync(songs[0].path));
});

test('a study without iteration tracks does not start, and the page says why', async () => {
  await page.click('#tab-study');
  await page.waitForSelector('#view-study:not([hidden])');
  assert.equal(await page.isHidden('#view-listen'), true);
  await page.waitForFunction(() => !document.getElementById('study-list-empty').hidden);
  await page.fill('#study-name', 'empty');
  await page.click('#btn-study-start');
  // The daemon's -32001 message, as the daemon words it.
  await waitMessage(page, /Starting the study: study.start: no iteration has tracks to draw from yet/);
  assert.deepEqual(await rpc('study.list'), []);
  assert.equal(await page.isHidden('#study-session'), true);
  await page.click('#tab-listen');
  await page.waitForSelector('#view-listen:not([hidden])');
});

test('screenshots at desktop and phone width are saved', async () => {
  await page.evaluate(() => { document.getElementById('message').hidden = true; });
  const desktop = path.join(ARTEFACTS, 'ui-screenshot.png');
  await page.screenshot({ path: desktop, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const phone = path.join(ARTEFACTS, 'ui-screenshot-phone.png');
  await page.screenshot({ path: phone, fullPage: true });
  // Nothing sticks out sideways at phone width.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
  assert.ok(fs.statSync(desktop).size > 10000 && fs.statSync(phone).size > 10000);
});

// A second daemon on fixture weights: iteration 0 (3 short tracks) at start, then a
// fine-tune long enough to watch (training.threads 1, many steps), cancelled at the end.
async function startTrainingDaemon({ name = 'd2', trainingSteps = 1500, tracks = 3 } = {}) {
  assert.ok(FIXTURE_WEIGHTS && fs.existsSync(FIXTURE_WEIGHTS), 'set FIXTURE_WEIGHTS to the ui_fixture_weights helper');
  const d = { dir: path.join(dir, name), log: '' };
  fs.mkdirSync(d.dir);
  execFileSync(FIXTURE_WEIGHTS, [path.join(d.dir, 'weights')], { stdio: 'inherit' });
  d.port = await freePort();
  fs.writeFileSync(path.join(d.dir, 'config.yaml'), [
    'paths:',
    `  data_dir: ${d.dir}/data`,
    `  socket: ${d.dir}/d.sock`,
    `  weights_dir: ${d.dir}/weights`,
    'http:',
    `  port: ${d.port}`,
    'audio:',
    '  output: none',
    'model:',
    '  device: cpu',
    '  steps: 2',
    'training:',
    `  steps: ${trainingSteps}`,
    '  batch_size: 2',
    '  rank: 2',
    '  alpha: 2',
    '  threads: 1',
    '  checkpoint_every: 1000',
    'generation:',
    `  tracks_per_iteration: ${tracks}`,
    '  seconds: 1.0',
    'schedule:',
    '  min_feedback: 1',
    '  after_new_ratings: 0',
    'dataset:',
    '  min_ratings: 2',
    '',
  ].join('\n'));
  d.proc = spawn(TUNELOOPD, ['--config', path.join(d.dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  d.proc.stdout.on('data', (x) => { d.log += x; });
  d.proc.stderr.on('data', (x) => { d.log += x; });
  await until('the second daemon to write ui-url', () => fs.existsSync(path.join(d.dir, 'data', 'ui-url')));
  d.token = fs.readFileSync(path.join(d.dir, 'data', 'ui-token'), 'utf8').trim();
  d.rpc = (method, params) => rpc(method, params, { to: d.port, auth: d.token });
  return d;
}

test('a running job moves the progress bar', async () => {
  daemon2 = await startTrainingDaemon();
  const d = daemon2;
  const tracks = await until('iteration 0 from the fixture model', async () => {
    const its = await d.rpc('iterations.list');
    if (its.length && its[0].status === 'failed') throw new Error(`iteration 0 failed\n${d.log}`);
    return its.length && its[0].status === 'ready' ? d.rpc('tracks.list') : null;
  }, 120000);
  assert.equal(tracks.length, 3);
  for (const [i, stars] of [[0, 5], [1, 1], [2, 1]]) await d.rpc('rate', { track_id: tracks[i].id, stars });

  // Another host name than the first daemon's page: another origin, so its own stored token.
  const p2 = await context.newPage();
  try {
    await p2.goto(`http://localhost:${d.port}/?token=${d.token}`);
    await p2.waitForSelector('body[data-ready="true"]');
    await p2.click('#btn-iterate');
    const first = await p2.waitForFunction(() => {
      const bar = document.getElementById('job-progress');
      return !document.getElementById('job').hidden && bar.value > 0 && bar.value;
    }, null, { timeout: 120000 }).then((h) => h.jsonValue());
    // Past the first value and far enough to be seen in the screenshot.
    const later = await p2.waitForFunction((v) => {
      const bar = document.getElementById('job-progress');
      return bar.value > Math.max(v, 0.1) && bar.value;
    }, first, { timeout: 120000 }).then((h) => h.jsonValue());
    assert.ok(later > first && later < 1, `progress ${first} -> ${later}`);
    assert.match(await p2.textContent('#job-label'), /Fine-tuning/);
    assert.match(await p2.textContent('#job-text'), /step \d+ of 1500/);
    const shot = path.join(ARTEFACTS, 'ui-screenshot-job.png');
    await p2.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000);

    const job = await d.rpc('job.status');
    assert.equal(job.job.state, 'running', JSON.stringify(job));
    assert.ok(job.job.progress > 0);
    const c = await d.rpc('job.cancel');
    assert.equal(c.cancelled, true);
    await p2.waitForFunction(() => document.getElementById('job').hidden && /cancelled/.test(document.getElementById('message').textContent),
      null, { timeout: 60000 });
  } finally {
    await p2.close();
  }
});

// The page's visible text and the listening view's fields, for the blinding checks.
function pageText(p) {
  return p.evaluate(() => ({
    text: document.body.innerText,
    nowTrack: document.getElementById('now-track').textContent,
    nowFile: document.getElementById('now-file').textContent,
    nowIteration: document.getElementById('now-iteration').textContent,
    iterationRows: document.getElementById('iterations-body').childElementCount,
    audioSrc: document.getElementById('study-audio').getAttribute('src') || '',
  }));
}

test('a blinded study runs from the page: every track answered, then finished and exported', async () => {
  daemon3 = await startTrainingDaemon({ name: 'd3', trainingSteps: 4, tracks: 2 });
  const d = daemon3;
  const ready = async (number) => {
    const it = (await d.rpc('iterations.list')).find((i) => i.number === number);
    if (it && it.status === 'failed') throw new Error(`iteration ${number} failed\n${d.log}`);
    return it && it.status === 'ready' ? it : null;
  };
  await until('iteration 0 from the fixture model', () => ready(0), 120000);
  const first = await d.rpc('tracks.list');
  assert.equal(first.length, 2);
  for (const [i, stars] of [[0, 5], [1, 4]]) await d.rpc('rate', { track_id: first[i].id, stars });
  const it = await d.rpc('iterate', {});
  assert.equal(it.started, true, JSON.stringify(it));
  await until('iteration 1 after a short fine-tune', () => ready(1), 180000);
  const tracks = await d.rpc('tracks.list');
  assert.equal(tracks.length, 4);
  const starsBefore = new Map(tracks.map((t) => [t.id, t.stars]));

  const p3 = await context.newPage();
  p3.on('console', (m) => { if (m.type() === 'error') d.log += `[browser] ${m.text()}\n`; });
  try {
    // localhost again: the page opened with the token stores it over the closed page's.
    await p3.goto(`http://localhost:${d.port}/?token=${d.token}`);
    await p3.waitForSelector('body[data-ready="true"]');
    assert.equal(await p3.isChecked('#where-browser'), true);
    await p3.click('#tab-study');
    await p3.waitForSelector('#study-it-1');
    // Typed key by key: digits in a text field are text, not a rating.
    await p3.locator('#study-name').pressSequentially('ui-pilot-2');
    await p3.check('#study-it-0');
    await p3.check('#study-it-1');
    await p3.fill('#study-per-iteration', '2');
    await p3.fill('#study-participant', 'alice');
    await p3.click('#btn-study-start');
    await p3.waitForSelector('#study-session:not([hidden])');
    const [s] = await d.rpc('study.list');
    assert.equal(s.name, 'ui-pilot-2');
    assert.equal(s.participant, 'alice');
    assert.equal(s.status, 'running');
    assert.equal(s.total, 4);
    assert.deepEqual(s.params.iterations, [0, 1]);
    assert.equal(s.params.tracks_per_iteration, 2);
    assert.equal(await p3.isHidden('#view-listen'), true);
    assert.equal(await p3.isDisabled('#tab-listen'), true);

    // 4 stars (click), skip (button), 2 stars (key), 3.5 stars (click); a reload in between.
    const answers = [4, null, 2, 3.5];
    const codes = [];
    for (let k = 0; k < answers.length; k++) {
      if (k === 2) {
        await p3.reload();
        await p3.waitForSelector('body[data-ready="true"]');
        assert.equal(await p3.isHidden('#view-listen'), true, 'a reload keeps the session blinded');
      }
      const next = await d.rpc('study.next');
      assert.equal(next.done, false);
      await p3.waitForFunction((c) => document.getElementById('study-code').textContent === c, next.code);
      assert.equal(await p3.textContent('#study-progress'), `${k + 1} of 4`);
      const seen = await pageText(p3);
      assert.doesNotMatch(seen.text, /iteration/i, `item ${k + 1} shows an iteration:\n${seen.text}`);
      assert.doesNotMatch(seen.text, /Track \d/);
      for (const t of tracks) {
        assert.ok(!seen.text.includes(path.basename(t.path)), `the page shows ${t.path}`);
        if (t.tags && t.tags.length >= 3) assert.ok(!seen.text.includes(t.tags), `the page shows tags "${t.tags}"`);
      }
      assert.deepEqual([seen.nowTrack, seen.nowFile, seen.nowIteration, seen.iterationRows], ['Nothing playing', '', '–', 0]);
      assert.doesNotMatch(seen.audioSrc, /\/tracks\//);

      if (k === 0) {
        // The browser plays the blinded copy by study and code; an unknown code is a 404.
        const served = await request({
          path: `/studies/${s.study_id}/audio/${next.code}`, to: d.port,
          headers: { Authorization: `Bearer ${d.token}`, Range: 'bytes=0-0' },
        });
        assert.ok(served.status === 200 || served.status === 206, `study audio: ${served.status}`);
        const unknown = await request({
          path: `/studies/${s.study_id}/audio/ZZZZ9`, to: d.port,
          headers: { Authorization: `Bearer ${d.token}` },
        });
        assert.equal(unknown.status, 404);
        await p3.click('#btn-study-play');
        await p3.waitForFunction(() => {
          const a = document.getElementById('study-audio');
          return a.currentTime > 0.3 || a.ended;
        }, null, { timeout: 15000 });
      }

      if (answers[k] === null) await p3.click('#btn-study-skip');
      else if (k === 2) await p3.keyboard.press(`Digit${answers[k]}`);
      else await p3.click(`#study-stars button[data-value="${answers[k]}"]`);
      codes.push(next.code);
      await until(`answer ${k + 1} in the study`, async () => (await d.rpc('study.status')).answered === k + 1);
    }
    assert.equal(new Set(codes).size, 4);
    await p3.waitForSelector('#study-done:not([hidden])');
    assert.equal(await p3.isHidden('#study-item'), true);
    assert.equal((await d.rpc('study.next')).done, true);

    // Nothing sticks out sideways at phone width in the study view either.
    await p3.setViewportSize({ width: 390, height: 844 });
    const overflow = await p3.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the study view is ${overflow}px wider than the phone`);
    await p3.setViewportSize({ width: 1280, height: 900 });

    // A relative folder: the daemon's error shows and the study stays open for export.
    await p3.fill('#study-out', 'relative/out');
    await p3.click('#btn-study-finish');
    await waitMessage(p3, /Exporting the study: study.export: parameter 'out' must be an absolute folder path/);
    assert.equal((await d.rpc('study.status')).status, 'running');

    const out = path.join(d.dir, 'export');
    await p3.fill('#study-out', out);
    await p3.click('#btn-study-finish');
    await p3.waitForSelector('#study-result:not([hidden])', { timeout: 60000 });
    assert.match(await p3.textContent('#study-result'), /“ui-pilot-2” is finished: 4 of 4 answered/);
    const files = await p3.$$eval('#study-result .study-files code', (els) => els.map((e) => e.textContent));
    for (const f of ['events.csv', 'summary.json', 'report.md']) assert.ok(files.includes(path.join(out, f)), `${f} in ${files}`);
    for (const f of files) assert.ok(fs.existsSync(f), `${f} was listed but not written`);
    const st = await d.rpc('study.status', { study_id: s.study_id });
    assert.deepEqual([st.status, st.answered, st.total], ['finished', 4, 4]);

    // Three ratings (the skip is none), from the chosen iterations, as answered.
    const [head, ...rows] = fs.readFileSync(path.join(out, 'events.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    const col = (name) => head.indexOf(name);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows.map((r) => Number(r[col('stars')])).sort((a, b) => a - b), [2, 3.5, 4]);
    for (const r of rows) {
      assert.equal(r[col('participant')], 'alice');
      assert.ok(['0', '1'].includes(r[col('iteration')]), `iteration ${r[col('iteration')]}`);
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).study, 'ui-pilot-2');
    // Study answers are not feedback to the loop: the tracks' own ratings are as before.
    for (const t of await d.rpc('tracks.list')) assert.equal(t.stars, starsBefore.get(t.id), `track ${t.id}`);

    const shot = path.join(ARTEFACTS, 'ui-screenshot-study.png');
    await p3.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000);

    // Closing the session brings the listening view back; the list shows the study finished.
    await p3.click('#btn-study-close');
    await p3.waitForSelector('#study-setup:not([hidden])');
    await p3.waitForFunction((id) => {
      const tr = document.querySelector(`#study-list-body tr[data-study-id="${id}"]`);
      return tr && /finished/.test(tr.textContent) && /4\/4/.test(tr.textContent);
    }, s.study_id);
    assert.equal(await p3.isDisabled('#tab-listen'), false);
    await p3.click('#tab-listen');
    await p3.waitForSelector('#view-listen:not([hidden])');
  } finally {
    await p3.close();
  }
});
