/**
 * @module porthole/settings
 *
 * The Settings panel of Porthole's VNC console page (console.html): scaling (fit to the window =
 * noVNC's scaleViewport, remote resize = resizeSession, 1:1 = neither), the quality and
 * compression levels the page asks the server for (rfb.qualityLevel, rfb.compressionLevel, 0-9)
 * view-only, and shared or exclusive (RFB ClientInit's shared flag: off asks the server to
 * disconnect the other viewers). Remembered per browser in localStorage, under the URL parameter
 * names the page already reads (`resize` off|scale|remote, `quality`, `compression`, `view_only`,
 * `shared`): console.js
 * reads its parameters through `withSettings`, so a parameter in the URL wins over a remembered
 * setting and a remembered one wins over the page's default. `scale` in the URL counts as a
 * choice of scaling too (console.js lets `resize` win over it).
 *
 * Scaling, quality and compression apply at once to the open console; view-only and shared from
 * the next time the page opens (shared is sent once, in ClientInit) (the page's buttons and panels are set up for one or the other). Not
 * offered on a final page. Nothing here reaches the server but what noVNC sends.
 */
import { make } from './panel-kit.js';

const STORAGE_KEY = 'porthole.console.settings';
const NAMES = ['resize', 'quality', 'compression', 'view_only', 'shared'];
const VALID = {
  resize: /^(scale|remote|off)$/,
  quality: /^[0-9]$/,
  compression: /^[0-9]$/,
  view_only: /^[01]$/,
  shared: /^[01]$/,
};

// ===== Storage =====

/** The remembered settings (only valid values); none when the browser keeps no storage for the page. */
export function readStored() {
  try {
    const value = JSON.parse(window.localStorage.getItem(STORAGE_KEY) ?? '{}');
    const stored = {};
    for (const name of NAMES) {
      if (typeof value?.[name] === 'string' && VALID[name].test(value[name])) stored[name] = value[name];
    }
    return stored;
  } catch {
    return {};
  }
}

function store(name, value) {
  try {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...readStored(), [name]: value }));
  } catch {
    // storage refused (private mode, a sandboxed frame): the setting holds for this page only
  }
}

/**
 * console.js's parameters with the remembered settings under them: a URL parameter wins, a
 * remembered setting fills in what the URL leaves out.
 */
export function withSettings(params) {
  const stored = readStored();
  return {
    get(name) {
      const value = params.get(name);
      if (value !== null || !Object.hasOwn(stored, name)) return value;
      if (name === 'resize' && params.get('scale') !== null) return null;
      return stored[name];
    },
  };
}

// ===== Messages =====

const MESSAGES = {
  en: {
    button: 'Settings', buttonTitle: 'Console settings, remembered in this browser', panel: 'Settings',
    scaling: 'Scaling', fit: 'Fit to the window', remote: 'Resize the machine\'s screen', none: '1:1 (scroll)',
    quality: 'Picture quality (0 low – 9 best)', compression: 'Compression (0 none – 9 most)',
    viewOnly: 'View only (from the next time this page opens)', shared: 'Share the console with other viewers (off: they are disconnected when this page connects)', close: 'Close', default: 'Default',
  },
  de: {
    button: 'Einstellungen', buttonTitle: 'Konsolen-Einstellungen, in diesem Browser gespeichert', panel: 'Einstellungen',
    scaling: 'Skalierung', fit: 'An das Fenster anpassen', remote: 'Bildschirm der Maschine anpassen', none: '1:1 (scrollen)',
    quality: 'Bildqualität (0 niedrig – 9 beste)', compression: 'Kompression (0 keine – 9 stärkste)',
    viewOnly: 'Nur ansehen (ab dem nächsten Öffnen dieser Seite)', shared: 'Konsole mit anderen Betrachtern teilen (aus: sie werden getrennt, wenn diese Seite sich verbindet)', close: 'Schließen', default: 'Standard',
  },
  fr: {
    button: 'Réglages', buttonTitle: 'Réglages de la console, gardés dans ce navigateur', panel: 'Réglages',
    scaling: 'Mise à l\'échelle', fit: 'Ajuster à la fenêtre', remote: 'Redimensionner l\'écran de la machine', none: '1:1 (défilement)',
    quality: 'Qualité d\'image (0 basse – 9 meilleure)', compression: 'Compression (0 aucune – 9 maximale)',
    viewOnly: 'Lecture seule (à la prochaine ouverture de cette page)', shared: 'Partager la console avec d’autres spectateurs (désactivé : ils sont déconnectés quand cette page se connecte)', close: 'Fermer', default: 'Par défaut',
  },
  es: {
    button: 'Ajustes', buttonTitle: 'Ajustes de la consola, guardados en este navegador', panel: 'Ajustes',
    scaling: 'Escala', fit: 'Ajustar a la ventana', remote: 'Redimensionar la pantalla de la máquina', none: '1:1 (desplazar)',
    quality: 'Calidad de imagen (0 baja – 9 mejor)', compression: 'Compresión (0 ninguna – 9 máxima)',
    viewOnly: 'Solo ver (desde la próxima vez que se abra esta página)', shared: 'Compartir la consola con otros espectadores (desactivado: se desconectan cuando esta página se conecta)', close: 'Cerrar', default: 'Predeterminado',
  },
  ja: {
    button: '設定', buttonTitle: 'コンソールの設定(このブラウザーに保存)', panel: '設定',
    scaling: '表示倍率', fit: 'ウィンドウに合わせる', remote: 'マシンの画面サイズを変更', none: '1:1(スクロール)',
    quality: '画質(0 低 – 9 最高)', compression: '圧縮(0 なし – 9 最大)',
    viewOnly: '表示のみ(次にこのページを開いたときから)', shared: '他の閲覧者とコンソールを共有する(オフ: このページが接続すると他の閲覧者は切断されます)', close: '閉じる', default: '既定',
  },
  'zh-CN': {
    button: '设置', buttonTitle: '控制台设置,保存在此浏览器中', panel: '设置',
    scaling: '缩放', fit: '适应窗口', remote: '调整虚拟机屏幕大小', none: '1:1(滚动)',
    quality: '画面质量(0 低 – 9 最佳)', compression: '压缩(0 无 – 9 最大)',
    viewOnly: '仅查看(下次打开此页面时生效)', shared: '与其他查看者共享控制台(关闭: 此页面连接时其他查看者将被断开)', close: '关闭', default: '默认',
  },
};

// ===== Panel =====

const panel = { text: MESSAGES.en, rfb: null, elements: {} };


function levelSelect(id) {
  // no choice made: noVNC's own level stands
  return make('select', { id }, [make('option', { value: '', textContent: panel.text.default }),
    ...Array.from({ length: 10 }, (_, n) => make('option', { value: String(n), textContent: String(n) }))]);
}

/** The page's URL parameters, read as console.js reads them (the #fragment's over the query's). */
function urlParams() {
  const query = new URLSearchParams(window.location.search);
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const last = (p, name) => {
    const values = p.getAll(name);
    return values.length === 0 ? null : values[values.length - 1];
  };
  return { get: (name) => last(hash, name) ?? last(query, name) };
}

function build() {
  const t = panel.text;
  const e = panel.elements;
  e.toggle = make('button', { id: 'settings-toggle', type: 'button', textContent: t.button, title: t.buttonTitle, hidden: true, 'aria-expanded': 'false', 'aria-controls': 'settings-panel' });
  e.scaling = make('select', { id: 'settings-scaling' }, [
    make('option', { value: 'scale', textContent: t.fit }),
    make('option', { value: 'remote', textContent: t.remote }),
    make('option', { value: 'off', textContent: t.none }),
  ]);
  e.quality = levelSelect('settings-quality');
  e.compression = levelSelect('settings-compression');
  e.viewOnly = make('input', { id: 'settings-view-only', type: 'checkbox' });
  e.shared = make('input', { id: 'settings-shared', type: 'checkbox' });
  e.close = make('button', { id: 'settings-close', type: 'button', textContent: t.close });
  e.panel = make('aside', { id: 'settings-panel', hidden: true, 'aria-label': t.panel }, [
    make('label', { for: 'settings-scaling', textContent: t.scaling }), e.scaling,
    make('label', { for: 'settings-quality', textContent: t.quality }), e.quality,
    make('label', { for: 'settings-compression', textContent: t.compression }), e.compression,
    make('div', { className: 'settings-check' }, [e.viewOnly, make('label', { for: 'settings-view-only', textContent: t.viewOnly })]),
    make('div', { className: 'settings-check' }, [e.shared, make('label', { for: 'settings-shared', textContent: t.shared })]),
    make('div', { className: 'settings-actions' }, [e.close]),
  ]);

  // what the page runs with: the URL's parameters over the remembered ones, as console.js read them
  const params = withSettings(urlParams());
  const resize = params.get('resize');
  const scale = params.get('scale');
  e.scaling.value = resize === 'remote' ? 'remote' : resize === 'off' || (resize !== 'scale' && scale !== null && /^(0|false|no|off)$/i.test(scale)) ? 'off' : 'scale';
  e.quality.value = VALID.quality.test(params.get('quality') ?? '') ? params.get('quality') : '';
  e.compression.value = VALID.compression.test(params.get('compression') ?? '') ? params.get('compression') : '';
  e.viewOnly.checked = /^(1|true|yes|on)$/i.test(params.get('view_only') ?? '');
  // RFB's shared flag (ClientInit): on by default, as console.js reads `shared`
  e.shared.checked = !/^(0|false|no|off)$/i.test(params.get('shared') ?? '');

  const bar = document.getElementById('bar');
  bar.insertBefore(e.toggle, document.getElementById('fullscreen'));
  document.body.insertBefore(e.panel, document.getElementById('screen'));

  e.toggle.addEventListener('click', () => show(e.panel.hidden));
  e.close.addEventListener('click', () => show(false));
  e.panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') show(false);
  });
  e.scaling.addEventListener('change', () => {
    store('resize', e.scaling.value);
    applyScaling();
  });
  e.quality.addEventListener('change', () => {
    if (e.quality.value !== '') store('quality', e.quality.value);
    applyLevels();
  });
  e.compression.addEventListener('change', () => {
    if (e.compression.value !== '') store('compression', e.compression.value);
    applyLevels();
  });
  e.viewOnly.addEventListener('change', () => store('view_only', e.viewOnly.checked ? '1' : '0'));
  e.shared.addEventListener('change', () => store('shared', e.shared.checked ? '1' : '0'));
}

function applyScaling() {
  const rfb = panel.rfb;
  if (rfb === null) return;
  const value = panel.elements.scaling.value;
  rfb.scaleViewport = value === 'scale';
  rfb.resizeSession = value === 'remote';
}

function applyLevels() {
  const rfb = panel.rfb;
  if (rfb === null) return;
  const { quality, compression } = panel.elements;
  if (quality.value !== '') rfb.qualityLevel = Number(quality.value);
  if (compression.value !== '') rfb.compressionLevel = Number(compression.value);
}

function show(open) {
  const e = panel.elements;
  // one panel at a time: the others close before this one takes the focus
  if (open) document.dispatchEvent(new CustomEvent('porthole:panel', { detail: 'settings' }));
  e.panel.hidden = !open;
  e.toggle.setAttribute('aria-expanded', String(open));
  if (open) e.scaling.focus();
  else panel.rfb?.focus({ preventScroll: true });
}

function update() {
  const e = panel.elements;
  // a final page (a link expired, revoked, unknown, used) offers nothing to set
  const state = document.body.dataset.consoleState;
  const final = state === 'refused' || state === 'loading';
  e.toggle.hidden = final;
  if (final && !e.panel.hidden) show(false);
}

/** console.js made `rfb`: the panel's choices go to it once console.js has set it up (it sets its options right after telling). */
function adopt(rfb) {
  if (rfb === panel.rfb || rfb === null || rfb === undefined) return;
  panel.rfb = rfb;
  queueMicrotask(() => {
    if (rfb !== panel.rfb) return;
    applyScaling();
    applyLevels();
  });
}

function main() {
  const lang = document.documentElement.lang;
  panel.text = Object.hasOwn(MESSAGES, lang) ? MESSAGES[lang] : MESSAGES.en;
  build();
  document.addEventListener('porthole:rfb', (event) => adopt(event.detail));
  adopt(window.porthole?.rfb);
  new MutationObserver(update).observe(document.body, { attributes: true, attributeFilter: ['data-console-state'] });
  update();
  document.addEventListener('porthole:panel', (event) => {
    if (event.detail !== 'settings' && !panel.elements.panel.hidden) show(false);
  });
}

// console.js imports this module (for withSettings), so this runs before console.js has chosen
// the page's language: the panel is built in a task of its own, after console.js's start.
setTimeout(main, 0);
