/**
 * The recording playback page: asks the proxy for the screen at a moment (seek) and for the
 * changes after it a span at a time (next), and draws them on a canvas as its own clock reaches
 * their times. Pause stops the clock, the speed scales it, the slider seeks. The proxy decodes
 * the recording; this page only draws RGBA rectangles (zlib-deflated per message, opened with the
 * browser's DecompressionStream). Protocol: src/proxy/playback.ts.
 */
const $ = (id) => document.getElementById(id);
const canvas = $('canvas');
const ctx = canvas.getContext('2d');
const body = document.body;

/** Recording time asked ahead of the clock, in clock milliseconds (scaled by the speed). */
const AHEAD_MS = 1500;
/** How much recording time one `next` asks for, at 1×. */
const SPAN_MS = 1000;

const state = {
  ws: null,
  duration: 0,
  /** Playback clock, recording ms. */
  position: 0,
  playing: false,
  speed: 1,
  /** Recording time up to which the proxy has sent (or been asked for) the changes. */
  askedUntil: 0,
  /** A `next` is in flight. */
  asking: false,
  more: true,
  /** Id of the last seek: messages of earlier commands are dropped. */
  epoch: 0,
  nextId: 1,
  /** Frames received and decompressed, waiting for the clock: {time, id, kind, rects, pixels, w, h}. */
  queue: [],
  /** Decompression keeps the order messages came in. */
  chain: Promise.resolve(),
  lastTick: 0,
  dragging: false,
};

function fmt(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function setStatus(text, st) {
  $('status').textContent = text;
  if (st) body.dataset.state = st;
}

function showTime() {
  $('time').textContent = `${fmt(state.position)} / ${fmt(state.duration)}`;
  if (!state.dragging) $('seek').value = String(Math.round(state.position));
  body.dataset.position = String(Math.round(state.position));
}

function send(cmd) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(cmd));
}

function seek(t) {
  const id = state.nextId++;
  state.epoch = id;
  state.queue = [];
  state.asking = false;
  state.more = true;
  state.position = t;
  state.askedUntil = t;
  body.dataset.seeking = 'true';
  send({ op: 'seek', t: Math.round(t), id });
  showTime();
}

function askMore() {
  if (state.asking || !state.more) return;
  if (state.askedUntil >= state.position + AHEAD_MS * state.speed) return;
  const until = Math.round(state.askedUntil + SPAN_MS * Math.max(1, state.speed));
  state.asking = true;
  send({ op: 'next', until, id: state.nextId++ });
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8ClampedArray(await new Response(stream).arrayBuffer());
}

function onBinary(buf) {
  const v = new DataView(buf);
  const kind = v.getUint8(0);
  const count = v.getUint16(2);
  const time = v.getUint32(4);
  const w = v.getUint16(8);
  const h = v.getUint16(10);
  const id = v.getUint32(12);
  const rects = [];
  for (let i = 0; i < count; i++) {
    const o = 16 + i * 8;
    rects.push({ x: v.getUint16(o), y: v.getUint16(o + 2), w: v.getUint16(o + 4), h: v.getUint16(o + 6) });
  }
  const data = new Uint8Array(buf, 16 + count * 8);
  state.chain = state.chain.then(async () => {
    const pixels = await inflate(data);
    if (id < state.epoch) return;
    state.queue.push({ time, id, kind, rects, pixels, w, h });
  });
}

function draw(f) {
  if (canvas.width !== f.w || canvas.height !== f.h) {
    canvas.width = f.w;
    canvas.height = f.h;
  }
  let o = 0;
  for (const r of f.rects) {
    const n = r.w * r.h * 4;
    ctx.putImageData(new ImageData(f.pixels.subarray(o, o + n), r.w, r.h), r.x, r.y);
    o += n;
  }
}

function onJson(m) {
  if (m.type === 'info') {
    state.duration = m.durationMs;
    $('seek').max = String(m.durationMs);
    canvas.width = m.width;
    canvas.height = m.height;
    document.title = `Recording of ${m.serverName ?? 'a console'}`;
    body.dataset.keyframes = String(m.keyframes.length);
    for (const el of ['play', 'speed', 'seek']) $(el).disabled = false;
    seek(0);
    return;
  }
  if (m.type === 'seeked') {
    state.chain = state.chain.then(() => {
      if (m.id !== state.epoch) return;
      // the whole screen at the moment sought is in the queue: draw it now
      const frames = state.queue.filter((f) => f.id === m.id);
      state.queue = state.queue.filter((f) => f.id !== m.id);
      for (const f of frames) draw(f);
      state.position = m.t;
      state.askedUntil = m.t;
      body.dataset.keyframeAt = m.keyframeAt === null ? '' : String(m.keyframeAt);
      body.dataset.seeking = 'false';
      setStatus(state.playing ? 'Playing' : 'Paused', state.playing ? 'playing' : 'paused');
      showTime();
    });
    return;
  }
  if (m.type === 'span') {
    state.chain = state.chain.then(() => {
      if (m.id < state.epoch) return;
      state.asking = false;
      state.askedUntil = Math.max(state.askedUntil, m.until);
      state.more = m.more;
    });
  }
}

function tick(now) {
  const dt = state.lastTick ? now - state.lastTick : 0;
  state.lastTick = now;
  if (state.playing && body.dataset.seeking !== 'true') {
    // the clock waits for frames it has not got yet rather than running past them
    const limit = state.more ? state.askedUntil : state.duration;
    state.position = Math.min(state.position + dt * state.speed, limit, state.duration);
    while (state.queue.length > 0 && state.queue[0].time <= state.position) draw(state.queue.shift());
    if (!state.more && state.queue.length === 0 && state.position >= state.duration) {
      state.playing = false;
      $('play').textContent = 'Play';
      setStatus('Ended', 'ended');
    }
    showTime();
  }
  if (body.dataset.seeking !== 'true') askMore();
  requestAnimationFrame(tick);
}

function play(on) {
  if (on && body.dataset.state === 'ended') seek(0);
  state.playing = on;
  $('play').textContent = on ? 'Pause' : 'Play';
  $('play').setAttribute('aria-label', on ? 'Pause' : 'Play');
  setStatus(on ? 'Playing' : 'Paused', on ? 'playing' : 'paused');
}

$('play').addEventListener('click', () => play(!state.playing));
$('speed').addEventListener('change', (e) => {
  state.speed = Number(e.target.value);
  body.dataset.speed = String(state.speed);
});
$('seek').addEventListener('input', () => {
  state.dragging = true;
  $('time').textContent = `${fmt(Number($('seek').value))} / ${fmt(state.duration)}`;
});
$('seek').addEventListener('change', () => {
  state.dragging = false;
  seek(Number($('seek').value));
});

function connect() {
  const token = new URLSearchParams(location.search).get('token');
  if (!token) {
    setStatus('This link has no playback token.', 'failed');
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/porthole/playback?token=${encodeURIComponent(token)}`);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onmessage = (e) => (typeof e.data === 'string' ? onJson(JSON.parse(e.data)) : onBinary(e.data));
  ws.onclose = (e) => {
    if (body.dataset.state === 'loading') setStatus('This playback link is not valid (expired, unknown or for another host). Ask for a new one.', 'failed');
    else if (body.dataset.state !== 'ended') setStatus(`Playback connection closed${e.reason ? `: ${e.reason}` : ''}.`, 'closed');
  };
  ws.onopen = () => setStatus('Loading the recording…');
  requestAnimationFrame(tick);
}

/** For tests and scripts: the page's controls as functions. */
window.portholePlayback = {
  play: () => play(true),
  pause: () => play(false),
  seek: (t) => seek(t),
  speed: (s) => {
    $('speed').value = String(s);
    state.speed = s;
    body.dataset.speed = String(s);
  },
  get position() { return state.position; },
};

connect();
