/**
 * @module porthole/clipboard
 *
 * The clipboard panel of Porthole's VNC console page (console.html): a "Clipboard" button in the
 * bar opens a panel that shows the machine's clipboard (noVNC's `clipboard` event, from RFB
 * ServerCutText) with a button to copy it into the browser's clipboard, and a box whose text is
 * sent to the machine's clipboard (noVNC's `clipboardPasteFrom`, RFB ClientCutText), with a
 * button that takes the browser's clipboard where the browser allows the page to read it.
 *
 * `[porthole] clipboard` is enforced by the proxy on the RFB stream; the page only leaves out what
 * the policy blocks, so nobody is offered a button that cannot work. The policy is the
 * `clipboard` field of the state the server puts into the page (absent: both ways).
 *
 * The panel also types text into the machine key by key (`keystrokes.js`), for consoles without a
 * clipboard agent: typing is keyboard input, offered whatever the clipboard policy (not when
 * view-only). The password field's text is never shown, is cleared before its keys are sent, and
 * the words of a refusal do not name its characters.
 *
 * Its one tie to console.js: console.js tells of each RFB object it makes with a `porthole:rfb`
 * event on the document (and `window.porthole.rfb` holds the current one). Its words follow the
 * language console.js chose (`<html lang>`). Nothing here is stored: the texts live in the panel.
 */
import { pickText, make } from './panel-kit.js';

import { LAYOUT_NAMES, plan, typeKeys } from './keystrokes.js';

// ===== Messages =====

const MESSAGES = {
  en: {
    button: 'Clipboard',
    buttonTitle: 'Show the clipboard panel',
    panel: 'Clipboard',
    fromVm: 'The machine\'s clipboard',
    fromVmEmpty: 'Nothing copied on the machine yet.',
    copy: 'Copy to this computer',
    copied: 'Copied to this computer\'s clipboard.',
    copyFailed: 'The browser did not let the page copy: select the text and copy it yourself.',
    toVm: 'Send text to the machine\'s clipboard',
    send: 'Send',
    sent: 'Sent to the machine\'s clipboard.',
    notConnected: 'Not connected: nothing was sent.',
    pasteHere: 'Paste from this computer',
    pasteFailed: 'The browser did not let the page read its clipboard: paste into the box yourself (Ctrl+V).',
    close: 'Close',
    typeText: 'Type text into the machine, key by key (for consoles without a clipboard)',
    layout: 'Keyboard layout of the machine',
    type: 'Type',
    password: 'Password to type (never shown or kept)',
    typePassword: 'Type password',
    typing: 'Typing…',
    typed: 'Typed {count} characters.',
    refused: 'Nothing was typed: the {layout} layout cannot type {chars}.',
    typeStopped: 'Stopped: the console closed after {count} characters.',
    refusedPassword: 'Nothing was typed: the {layout} layout cannot type some characters of the password.',
  },
  de: {
    button: 'Zwischenablage',
    buttonTitle: 'Zwischenablage-Bereich anzeigen',
    panel: 'Zwischenablage',
    fromVm: 'Zwischenablage der Maschine',
    fromVmEmpty: 'Auf der Maschine wurde noch nichts kopiert.',
    copy: 'Auf diesen Computer kopieren',
    copied: 'In die Zwischenablage dieses Computers kopiert.',
    copyFailed: 'Der Browser erlaubt der Seite das Kopieren nicht: Markieren und kopieren Sie den Text selbst.',
    toVm: 'Text in die Zwischenablage der Maschine senden',
    send: 'Senden',
    sent: 'In die Zwischenablage der Maschine gesendet.',
    notConnected: 'Nicht verbunden: Es wurde nichts gesendet.',
    pasteHere: 'Von diesem Computer einfügen',
    pasteFailed: 'Der Browser erlaubt der Seite nicht, seine Zwischenablage zu lesen: Fügen Sie selbst in das Feld ein (Strg+V).',
    close: 'Schließen',
    typeText: 'Text Taste für Taste in die Maschine tippen (für Konsolen ohne Zwischenablage)',
    layout: 'Tastaturbelegung der Maschine',
    type: 'Tippen',
    password: 'Zu tippendes Passwort (wird nie angezeigt oder gespeichert)',
    typePassword: 'Passwort tippen',
    typing: 'Wird getippt…',
    typed: '{count} Zeichen getippt.',
    refused: 'Nichts wurde getippt: Mit der Belegung {layout} lässt sich {chars} nicht tippen.',
    typeStopped: 'Abgebrochen: Die Konsole wurde nach {count} Zeichen geschlossen.',
    refusedPassword: 'Nichts wurde getippt: Mit der Belegung {layout} lassen sich einige Zeichen des Passworts nicht tippen.',
  },
  fr: {
    button: 'Presse-papiers',
    buttonTitle: 'Afficher le panneau du presse-papiers',
    panel: 'Presse-papiers',
    fromVm: 'Presse-papiers de la machine',
    fromVmEmpty: 'Rien n\'a encore été copié sur la machine.',
    copy: 'Copier sur cet ordinateur',
    copied: 'Copié dans le presse-papiers de cet ordinateur.',
    copyFailed: 'Le navigateur n\'a pas permis à la page de copier\u00a0: sélectionnez le texte et copiez-le vous-même.',
    toVm: 'Envoyer du texte au presse-papiers de la machine',
    send: 'Envoyer',
    sent: 'Envoyé au presse-papiers de la machine.',
    notConnected: 'Non connecté\u00a0: rien n\'a été envoyé.',
    pasteHere: 'Coller depuis cet ordinateur',
    pasteFailed: 'Le navigateur n\'a pas permis à la page de lire son presse-papiers\u00a0: collez vous-même dans la zone (Ctrl+V).',
    close: 'Fermer',
    typeText: 'Taper du texte dans la machine, touche par touche (pour les consoles sans presse-papiers)',
    layout: 'Disposition du clavier de la machine',
    type: 'Taper',
    password: 'Mot de passe à taper (jamais affiché ni conservé)',
    typePassword: 'Taper le mot de passe',
    typing: 'Frappe en cours…',
    typed: '{count} caractères tapés.',
    refused: 'Rien n\'a été tapé\u00a0: la disposition {layout} ne permet pas de taper {chars}.',
    typeStopped: 'Interrompu\u00a0: la console s\'est fermée après {count} caractères.',
    refusedPassword: 'Rien n\'a été tapé\u00a0: la disposition {layout} ne permet pas de taper certains caractères du mot de passe.',
  },
  es: {
    button: 'Portapapeles',
    buttonTitle: 'Mostrar el panel del portapapeles',
    panel: 'Portapapeles',
    fromVm: 'Portapapeles de la máquina',
    fromVmEmpty: 'Todavía no se ha copiado nada en la máquina.',
    copy: 'Copiar en este equipo',
    copied: 'Copiado en el portapapeles de este equipo.',
    copyFailed: 'El navegador no permitió copiar a la página: seleccione el texto y cópielo usted.',
    toVm: 'Enviar texto al portapapeles de la máquina',
    send: 'Enviar',
    sent: 'Enviado al portapapeles de la máquina.',
    notConnected: 'Sin conexión: no se envió nada.',
    pasteHere: 'Pegar desde este equipo',
    pasteFailed: 'El navegador no permitió a la página leer su portapapeles: pegue usted en el cuadro (Ctrl+V).',
    close: 'Cerrar',
    typeText: 'Escribir texto en la máquina, tecla a tecla (para consolas sin portapapeles)',
    layout: 'Distribución de teclado de la máquina',
    type: 'Escribir',
    password: 'Contraseña que escribir (nunca se muestra ni se guarda)',
    typePassword: 'Escribir contraseña',
    typing: 'Escribiendo…',
    typed: '{count} caracteres escritos.',
    refused: 'No se escribió nada: la distribución {layout} no puede escribir {chars}.',
    typeStopped: 'Detenido: la consola se cerró tras {count} caracteres.',
    refusedPassword: 'No se escribió nada: la distribución {layout} no puede escribir algunos caracteres de la contraseña.',
  },
  ja: {
    button: 'クリップボード',
    buttonTitle: 'クリップボードパネルを表示',
    panel: 'クリップボード',
    fromVm: 'マシンのクリップボード',
    fromVmEmpty: 'マシンではまだ何もコピーされていません。',
    copy: 'このコンピューターにコピー',
    copied: 'このコンピューターのクリップボードにコピーしました。',
    copyFailed: 'ブラウザーがコピーを許可しませんでした。テキストを選択して自分でコピーしてください。',
    toVm: 'マシンのクリップボードにテキストを送信',
    send: '送信',
    sent: 'マシンのクリップボードに送信しました。',
    notConnected: '接続されていないため、何も送信されませんでした。',
    pasteHere: 'このコンピューターから貼り付け',
    pasteFailed: 'ブラウザーがクリップボードの読み取りを許可しませんでした。ボックスに自分で貼り付けてください (Ctrl+V)。',
    close: '閉じる',
    typeText: 'テキストをキー入力としてマシンに送信 (クリップボードのないコンソール用)',
    layout: 'マシンのキーボード配列',
    type: '入力',
    password: '入力するパスワード (表示も保存もされません)',
    typePassword: 'パスワードを入力',
    typing: '入力中…',
    typed: '{count} 文字を入力しました。',
    refused: '何も入力されていません: {layout} 配列では {chars} を入力できません。',
    typeStopped: '中断しました: {count} 文字の後にコンソールが閉じられました。',
    refusedPassword: '何も入力されていません: {layout} 配列ではパスワードの一部の文字を入力できません。',
  },
  'zh-CN': {
    button: '剪贴板',
    buttonTitle: '显示剪贴板面板',
    panel: '剪贴板',
    fromVm: '虚拟机的剪贴板',
    fromVmEmpty: '虚拟机上尚未复制任何内容。',
    copy: '复制到本机',
    copied: '已复制到本机剪贴板。',
    copyFailed: '浏览器不允许页面复制：请选中文本后自行复制。',
    toVm: '将文本发送到虚拟机的剪贴板',
    send: '发送',
    sent: '已发送到虚拟机的剪贴板。',
    notConnected: '未连接：未发送任何内容。',
    pasteHere: '从本机粘贴',
    pasteFailed: '浏览器不允许页面读取剪贴板：请自行粘贴到文本框中 (Ctrl+V)。',
    close: '关闭',
    typeText: '逐键向虚拟机输入文本 (适用于没有剪贴板的控制台)',
    layout: '虚拟机的键盘布局',
    type: '输入',
    password: '要输入的密码 (不会显示或保存)',
    typePassword: '输入密码',
    typing: '正在输入…',
    typed: '已输入 {count} 个字符。',
    refused: '未输入任何内容: {layout} 布局无法输入 {chars}。',
    typeStopped: '已停止: 输入 {count} 个字符后控制台已关闭。',
    refusedPassword: '未输入任何内容: {layout} 布局无法输入密码中的某些字符。',
  },
};

// `[porthole] clipboard` values (src/rfb/clipboard-policy.ts): which ways the text may go.
const POLICIES = new Set(['both', 'to-vm', 'from-vm', 'off']);

// ===== State =====

const panel = {
  text: MESSAGES.en,
  toVm: true,
  fromVm: true,
  rfb: null,
  typing: false,
  elements: {},
};

// The layout first offered for typing: the page language's own, else US English.
const LANGUAGE_LAYOUTS = { de: 'de', fr: 'fr', es: 'es', ja: 'jp' };

function readPolicy() {
  const element = document.getElementById('porthole-state');
  try {
    const value = element === null ? null : JSON.parse(element.textContent)?.clipboard;
    return POLICIES.has(value) ? value : 'both';
  } catch {
    return 'both';
  }
}


// ===== Elements =====


function build() {
  const t = panel.text;
  const e = panel.elements;
  e.toggle = make('button', { id: 'clipboard-toggle', type: 'button', textContent: t.button, title: t.buttonTitle, 'aria-expanded': 'false', 'aria-controls': 'clipboard-panel' });
  e.fromVmText = make('textarea', { id: 'clipboard-from-vm', readOnly: true, rows: 4, placeholder: t.fromVmEmpty });
  e.copy = make('button', { id: 'clipboard-copy', type: 'button', textContent: t.copy, disabled: true });
  e.toVmText = make('textarea', { id: 'clipboard-to-vm', rows: 4, spellcheck: false, autocomplete: 'off' });
  e.send = make('button', { id: 'clipboard-send', type: 'button', textContent: t.send, disabled: true });
  e.pasteHere = make('button', { id: 'clipboard-paste-here', type: 'button', textContent: t.pasteHere });
  e.close = make('button', { id: 'clipboard-close', type: 'button', textContent: t.close });
  e.message = make('p', { id: 'clipboard-message', role: 'status', 'aria-live': 'polite' });
  e.keysText = make('textarea', { id: 'keys-text', rows: 3, spellcheck: false, autocomplete: 'off' });
  e.layout = make('select', { id: 'keys-layout' }, Object.entries(LAYOUT_NAMES).map(([value, name]) => make('option', { value, textContent: name })));
  e.layout.value = LANGUAGE_LAYOUTS[document.documentElement.lang] ?? 'us';
  e.type = make('button', { id: 'keys-type', type: 'button', textContent: t.type, disabled: true });
  e.password = make('input', { id: 'keys-password', type: 'password', autocomplete: 'off' });
  e.typePassword = make('button', { id: 'keys-type-password', type: 'button', textContent: t.typePassword, disabled: true });
  const keys = make('section', { id: 'keys-part' }, [
    make('label', { for: 'keys-text', textContent: t.typeText }),
    e.keysText,
    make('div', { className: 'clipboard-actions' }, [e.type]),
    make('label', { for: 'keys-password', textContent: t.password }),
    e.password,
    make('div', { className: 'clipboard-actions' }, [e.typePassword]),
    make('label', { for: 'keys-layout', textContent: t.layout }),
    e.layout,
  ]);
  const fromVm = make('section', { id: 'clipboard-from-vm-part', hidden: !panel.fromVm }, [
    make('label', { for: 'clipboard-from-vm', textContent: t.fromVm }),
    e.fromVmText,
    make('div', { className: 'clipboard-actions' }, [e.copy]),
  ]);
  const toVm = make('section', { id: 'clipboard-to-vm-part', hidden: !panel.toVm }, [
    make('label', { for: 'clipboard-to-vm', textContent: t.toVm }),
    e.toVmText,
    make('div', { className: 'clipboard-actions' }, [e.send, e.pasteHere]),
  ]);
  e.panel = make('aside', { id: 'clipboard-panel', hidden: true, 'aria-label': t.panel }, [fromVm, toVm, keys, e.message, make('div', { className: 'clipboard-actions' }, [e.close])]);
  // The browser gives pages its clipboard only through the Clipboard API, where it allows it.
  e.pasteHere.hidden = typeof navigator.clipboard?.readText !== 'function';

  const bar = document.getElementById('bar');
  bar.insertBefore(e.toggle, document.getElementById('fullscreen'));
  document.body.insertBefore(e.panel, document.getElementById('screen'));

  e.toggle.addEventListener('click', toggleOnClick);
  e.close.addEventListener('click', () => show(false));
  e.copy.addEventListener('click', copyOnClick);
  e.send.addEventListener('click', sendOnClick);
  e.pasteHere.addEventListener('click', pasteHereOnClick);
  e.toVmText.addEventListener('input', updateButtons);
  e.keysText.addEventListener('input', updateButtons);
  e.password.addEventListener('input', updateButtons);
  e.type.addEventListener('click', () => typeFrom(e.keysText, false));
  e.typePassword.addEventListener('click', () => typeFrom(e.password, true));
  e.panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') show(false);
  });
}

// ===== Behaviour =====

function connected() {
  return panel.rfb !== null && document.body.dataset.consoleState === 'connected';
}

function updateButtons() {
  const e = panel.elements;
  // a final page (a link expired, revoked, unknown, used) offers no button that cannot work: the
  // toggle goes with the console's own buttons, and an open panel closes
  const final = document.body.dataset.consoleState === 'refused';
  if (final && !e.panel.hidden) show(false);
  e.toggle.hidden = final;
  // noVNC drops a paste while view-only: the part is not offered then
  const viewOnly = panel.rfb?.viewOnly === true;
  e.toVmText.closest('section').hidden = !panel.toVm || viewOnly;
  e.send.disabled = !connected() || e.toVmText.value === '';
  e.keysText.closest('section').hidden = viewOnly;
  e.type.disabled = !connected() || panel.typing || e.keysText.value === '';
  e.typePassword.disabled = !connected() || panel.typing || e.password.value === '';
  e.copy.disabled = e.fromVmText.value === '';
}

function say(key, values = {}) {
  const text = key === null ? '' : panel.text[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
  panel.elements.message.textContent = text;
}

function show(open) {
  const e = panel.elements;
  // one panel at a time: the others close before this one takes the focus
  if (open) document.dispatchEvent(new CustomEvent('porthole:panel', { detail: 'clipboard' }));
  e.panel.hidden = !open;
  e.toggle.setAttribute('aria-expanded', String(open));
  say(null);
  if (open) [e.toVmText, e.fromVmText, e.keysText].find((field) => !field.closest('section').hidden)?.focus();
  else panel.rfb?.focus({ preventScroll: true });
}

function toggleOnClick() {
  show(panel.elements.panel.hidden);
}

async function copyOnClick() {
  const text = panel.elements.fromVmText.value;
  try {
    await navigator.clipboard.writeText(text);
    say('copied');
  } catch {
    panel.elements.fromVmText.select();
    say('copyFailed');
  }
}

function sendOnClick() {
  if (!connected()) {
    say('notConnected');
    return;
  }
  panel.rfb.clipboardPasteFrom(panel.elements.toVmText.value);
  say('sent');
}

async function pasteHereOnClick() {
  try {
    panel.elements.toVmText.value = await navigator.clipboard.readText();
    updateButtons();
    say(null);
  } catch {
    panel.elements.toVmText.focus();
    say('pasteFailed');
  }
}

/** Types `field`'s text on the chosen layout; nothing at all if the layout cannot type all of it. */
async function typeFrom(field, isPassword) {
  if (!connected()) {
    say('notConnected');
    return;
  }
  const layout = panel.elements.layout.value;
  const result = plan(field.value, layout);
  if (result.refused) {
    // a password's characters are never named, not even the ones that cannot be typed
    if (isPassword) say('refusedPassword', { layout: LAYOUT_NAMES[layout] });
    else say('refused', { layout: LAYOUT_NAMES[layout], chars: result.refused.map((c) => `“${c}”`).join(' ') });
    return;
  }
  if (isPassword) field.value = '';
  panel.typing = true;
  updateButtons();
  say('typing');
  const rfb = panel.rfb;
  const typed = await typeKeys(rfb, result.keys, () => panel.rfb === rfb && connected());
  panel.typing = false;
  updateButtons();
  say(typed === result.keys.length ? 'typed' : 'typeStopped', { count: typed });
}

function rfbOnClipboard(rfb, event) {
  if (rfb !== panel.rfb || !panel.fromVm) return;
  panel.elements.fromVmText.value = event.detail.text;
  updateButtons();
}

/** console.js made `rfb`: the panel follows it from now on. */
function adopt(rfb) {
  if (rfb === panel.rfb || rfb === null || rfb === undefined) return;
  panel.rfb = rfb;
  rfb.addEventListener('clipboard', (event) => rfbOnClipboard(rfb, event));
  updateButtons();
}

function main() {
  const policy = readPolicy();
  panel.text = pickText(MESSAGES);
  panel.toVm = policy === 'both' || policy === 'to-vm';
  panel.fromVm = policy === 'both' || policy === 'from-vm';
  build();
  document.addEventListener('porthole:rfb', (event) => adopt(event.detail));
  adopt(window.porthole?.rfb);
  // the send button follows the console's state (console.js sets it on <body>)
  new MutationObserver(updateButtons).observe(document.body, { attributes: true, attributeFilter: ['data-console-state', 'data-view-only'] });
  updateButtons();
  document.addEventListener('porthole:panel', (event) => {
    if (event.detail !== 'clipboard' && !panel.elements.panel.hidden) show(false);
  });
}

main();
