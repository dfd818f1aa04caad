/**
 * @module porthole/console
 *
 * The browser side of Porthole's VNC console page (console.html). It reads the token state the
 * server injected into the page, opens a noVNC RFB session over the gateway's WebSocket, says in
 * words what is happening, and reconnects by itself after a network blip while the token is
 * still valid. The contract with the server (URL parameters, injected JSON, endpoints, the
 * `data-console-state` values tests wait for) is written down in test/web/page-notes.md.
 *
 * Plain browser ES module, no build step: noVNC's own ES modules are served at /novnc/.
 */

// the Settings panel's remembered choices, under the URL's parameters (settings.js)
import { withSettings } from './settings.js';

// ===== Messages =====

// Every string the person at the console can see. `{name}` and `{reason}` are filled in by
// format(); anything the server sends (names, reasons) is only ever set as textContent.
const MESSAGES = {
  en: {
    loading: 'Loading…',
    connecting: 'Connecting…',
    connectingTo: 'Connecting to {name}…',
    connected: 'Connected',
    connectedTo: 'Connected to {name}',
    reconnecting: 'Connection lost, reconnecting…',
    retrying: 'Could not connect, retrying…',
    retryingTo: 'Could not connect to {name}, retrying…',
    disconnected: 'Disconnected: {reason}',
    disconnectedByUser: 'Disconnected',
    expired: 'This console link has expired. Ask for a new console URL.',
    sessionExpired: 'The console session expired. Ask for a new console URL.',
    unknown: 'This console link is not valid: it was revoked, or it never existed. Ask for a new link.',
    missing: 'No console token in this URL.',
    limited: 'Too many failed attempts from your address; try again in a minute.',
    idleTimeout: 'The console was closed after a time without input. Press Connect to open it again.',
    maxDuration: 'The console session reached its maximum duration. Press Connect to open it again.',
    limitTotal: 'The console service is full: too many consoles are open. Try again in a moment.',
    limitServer: 'Too many consoles are open on this machine. Close one, or try again in a moment.',
    limitProject: 'Too many consoles are open in this project. Close one, or try again in a moment.',
    limitClient: 'Too many consoles are open from your address. Close one, or try again in a moment.',
    unreachable: 'The console could not be reached (the machine may be off or its host down).',
    authFailed: 'Authentication with the machine failed.',
    passwordUnsupported: 'The machine asks for a password, which this page does not support.',
    loadFailed: 'The console viewer could not be loaded.',
    badUrl: 'The console address in this URL is not valid.',
    ctrlAltDel: 'Ctrl-Alt-Del',
    ctrlAltDelTitle: 'Send Ctrl-Alt-Del to the machine',
    connect: 'Connect',
    disconnect: 'Disconnect',
    fullscreen: 'Fullscreen',
    exitFullscreen: 'Exit fullscreen',
    console: 'Console',
    backendRefused: 'The machine is off or its console is not listening.',
    backendRefusedTo: '{name} is off or its console is not listening.',
    unavailable: 'Porthole cannot check this console link right now (its token store is not answering). It will try again by itself.',
    used: 'This console link has already been used: it opens one session only. Ask for a new link.',
    malformed: 'This console link is incomplete or damaged. Copy the whole link again, or ask for a new one.',
    tryAgain: 'Try again',
    newLink: 'Get a new link',
    closesIn: 'Closes in {minutes} min',
    closesSoon: 'Closes in less than a minute',
    closesTitle: 'When the console session will be closed',
  },
  de: {
    loading: 'Wird geladen…',
    connecting: 'Verbindung wird hergestellt…',
    connectingTo: 'Verbindung zu {name} wird hergestellt…',
    connected: 'Verbunden',
    connectedTo: 'Verbunden mit {name}',
    reconnecting: 'Verbindung unterbrochen, neuer Versuch…',
    retrying: 'Keine Verbindung möglich, neuer Versuch…',
    retryingTo: 'Keine Verbindung zu {name} möglich, neuer Versuch…',
    disconnected: 'Getrennt: {reason}',
    disconnectedByUser: 'Getrennt',
    expired: 'Dieser Konsolen-Link ist abgelaufen. Fordern Sie eine neue Konsolen-URL an.',
    sessionExpired: 'Die Konsolensitzung ist abgelaufen. Fordern Sie eine neue Konsolen-URL an.',
    unknown: 'Dieser Konsolen-Link ist ungültig: Er wurde widerrufen oder hat nie existiert. Fordern Sie einen neuen Link an.',
    missing: 'Diese URL enthält kein Konsolen-Token.',
    limited: 'Zu viele fehlgeschlagene Versuche von Ihrer Adresse; versuchen Sie es in einer Minute erneut.',
    idleTimeout: 'Die Konsole wurde nach einer Zeit ohne Eingabe geschlossen. Mit „Verbinden“ öffnen Sie sie wieder.',
    maxDuration: 'Die Konsolensitzung hat ihre Höchstdauer erreicht. Mit „Verbinden“ öffnen Sie sie wieder.',
    limitTotal: 'Der Konsolendienst ist ausgelastet: zu viele Konsolen sind offen. Versuchen Sie es gleich noch einmal.',
    limitServer: 'Auf dieser Maschine sind zu viele Konsolen offen. Schließen Sie eine oder versuchen Sie es gleich noch einmal.',
    limitProject: 'In diesem Projekt sind zu viele Konsolen offen. Schließen Sie eine oder versuchen Sie es gleich noch einmal.',
    limitClient: 'Von Ihrer Adresse sind zu viele Konsolen offen. Schließen Sie eine oder versuchen Sie es gleich noch einmal.',
    unreachable: 'Die Konsole ist nicht erreichbar (die Maschine ist vielleicht ausgeschaltet oder ihr Host nicht verfügbar).',
    authFailed: 'Die Anmeldung an der Maschine ist fehlgeschlagen.',
    passwordUnsupported: 'Die Maschine verlangt ein Passwort; das unterstützt diese Seite nicht.',
    loadFailed: 'Der Konsolen-Viewer konnte nicht geladen werden.',
    badUrl: 'Die Konsolenadresse in dieser URL ist ungültig.',
    ctrlAltDel: 'Strg-Alt-Entf',
    ctrlAltDelTitle: 'Strg-Alt-Entf an die Maschine senden',
    connect: 'Verbinden',
    disconnect: 'Trennen',
    fullscreen: 'Vollbild',
    exitFullscreen: 'Vollbild beenden',
    console: 'Konsole',
    backendRefused: 'Die Maschine ist ausgeschaltet oder ihre Konsole nimmt keine Verbindungen an.',
    backendRefusedTo: '{name} ist ausgeschaltet oder die Konsole nimmt keine Verbindungen an.',
    unavailable: 'Porthole kann diesen Konsolen-Link gerade nicht prüfen (der Token-Speicher antwortet nicht). Es wird von selbst erneut versucht.',
    used: 'Dieser Konsolen-Link wurde bereits verwendet: Er öffnet nur eine Sitzung. Fordern Sie einen neuen Link an.',
    malformed: 'Dieser Konsolen-Link ist unvollständig oder beschädigt. Kopieren Sie den ganzen Link erneut oder fordern Sie einen neuen an.',
    tryAgain: 'Erneut versuchen',
    newLink: 'Neuen Link holen',
    closesIn: 'Schließt in {minutes} Min.',
    closesSoon: 'Schließt in weniger als einer Minute',
    closesTitle: 'Wann die Konsolensitzung geschlossen wird',
  },
  fr: {
    loading: 'Chargement…',
    connecting: 'Connexion…',
    connectingTo: 'Connexion à {name}…',
    connected: 'Connecté',
    connectedTo: 'Connecté à {name}',
    reconnecting: 'Connexion perdue, reconnexion…',
    retrying: 'Connexion impossible, nouvel essai…',
    retryingTo: 'Connexion à {name} impossible, nouvel essai…',
    disconnected: 'Déconnecté\u00a0: {reason}',
    disconnectedByUser: 'Déconnecté',
    expired: 'Ce lien de console a expiré. Demandez une nouvelle URL de console.',
    sessionExpired: 'La session de console a expiré. Demandez une nouvelle URL de console.',
    unknown: 'Ce lien de console n’est pas valide\u00a0: il a été révoqué ou n’a jamais existé. Demandez un nouveau lien.',
    missing: 'Aucun jeton de console dans cette URL.',
    limited: 'Trop de tentatives échouées depuis votre adresse\u00a0; réessayez dans une minute.',
    idleTimeout: 'La console a été fermée après un temps sans saisie. Cliquez sur Connecter pour la rouvrir.',
    maxDuration: 'La session de console a atteint sa durée maximale. Cliquez sur Connecter pour la rouvrir.',
    limitTotal: 'Le service de console est saturé\u00a0: trop de consoles sont ouvertes. Réessayez dans un instant.',
    limitServer: 'Trop de consoles sont ouvertes sur cette machine. Fermez-en une ou réessayez dans un instant.',
    limitProject: 'Trop de consoles sont ouvertes dans ce projet. Fermez-en une ou réessayez dans un instant.',
    limitClient: 'Trop de consoles sont ouvertes depuis votre adresse. Fermez-en une ou réessayez dans un instant.',
    unreachable: 'La console est injoignable (la machine est peut-être éteinte ou son hôte indisponible).',
    authFailed: 'L’authentification auprès de la machine a échoué.',
    passwordUnsupported: 'La machine demande un mot de passe, ce que cette page ne prend pas en charge.',
    loadFailed: 'Le visualiseur de console n’a pas pu être chargé.',
    badUrl: 'L’adresse de console de cette URL n’est pas valide.',
    ctrlAltDel: 'Ctrl-Alt-Suppr',
    ctrlAltDelTitle: 'Envoyer Ctrl-Alt-Suppr à la machine',
    connect: 'Connecter',
    disconnect: 'Déconnecter',
    fullscreen: 'Plein écran',
    exitFullscreen: 'Quitter le plein écran',
    console: 'Console',
    backendRefused: 'La machine est éteinte ou sa console n’accepte pas de connexion.',
    backendRefusedTo: '{name} est éteinte ou sa console n’accepte pas de connexion.',
    unavailable: 'Porthole ne peut pas vérifier ce lien de console pour l’instant (son stockage de jetons ne répond pas). Nouvel essai automatique.',
    used: 'Ce lien de console a déjà été utilisé\u00a0: il n’ouvre qu’une session. Demandez un nouveau lien.',
    malformed: 'Ce lien de console est incomplet ou abîmé. Copiez à nouveau le lien entier, ou demandez-en un nouveau.',
    tryAgain: 'Réessayer',
    newLink: 'Obtenir un nouveau lien',
    closesIn: 'Fermeture dans {minutes}\u00a0min',
    closesSoon: 'Fermeture dans moins d’une minute',
    closesTitle: 'Quand la session de console sera fermée',
  },
  es: {
    loading: 'Cargando…',
    connecting: 'Conectando…',
    connectingTo: 'Conectando con {name}…',
    connected: 'Conectado',
    connectedTo: 'Conectado a {name}',
    reconnecting: 'Conexión perdida, reconectando…',
    retrying: 'No se pudo conectar, reintentando…',
    retryingTo: 'No se pudo conectar con {name}, reintentando…',
    disconnected: 'Desconectado: {reason}',
    disconnectedByUser: 'Desconectado',
    expired: 'Este enlace de consola ha caducado. Solicite una nueva URL de consola.',
    sessionExpired: 'La sesión de consola ha caducado. Solicite una nueva URL de consola.',
    unknown: 'Este enlace de consola no es válido: fue revocado o nunca existió. Solicite un enlace nuevo.',
    missing: 'No hay ningún token de consola en esta URL.',
    limited: 'Demasiados intentos fallidos desde su dirección; inténtelo de nuevo dentro de un minuto.',
    idleTimeout: 'La consola se cerró tras un tiempo sin actividad. Pulse Conectar para abrirla de nuevo.',
    maxDuration: 'La sesión de consola alcanzó su duración máxima. Pulse Conectar para abrirla de nuevo.',
    limitTotal: 'El servicio de consola está lleno: hay demasiadas consolas abiertas. Inténtelo de nuevo en un momento.',
    limitServer: 'Hay demasiadas consolas abiertas en esta máquina. Cierre una o inténtelo de nuevo en un momento.',
    limitProject: 'Hay demasiadas consolas abiertas en este proyecto. Cierre una o inténtelo de nuevo en un momento.',
    limitClient: 'Hay demasiadas consolas abiertas desde su dirección. Cierre una o inténtelo de nuevo en un momento.',
    unreachable: 'No se puede acceder a la consola (puede que la máquina esté apagada o su host no esté disponible).',
    authFailed: 'Falló la autenticación con la máquina.',
    passwordUnsupported: 'La máquina pide una contraseña, algo que esta página no admite.',
    loadFailed: 'No se pudo cargar el visor de la consola.',
    badUrl: 'La dirección de la consola en esta URL no es válida.',
    ctrlAltDel: 'Ctrl-Alt-Supr',
    ctrlAltDelTitle: 'Enviar Ctrl-Alt-Supr a la máquina',
    connect: 'Conectar',
    disconnect: 'Desconectar',
    fullscreen: 'Pantalla completa',
    exitFullscreen: 'Salir de pantalla completa',
    console: 'Consola',
    backendRefused: 'La máquina está apagada o su consola no acepta conexiones.',
    backendRefusedTo: '{name} está apagada o su consola no acepta conexiones.',
    unavailable: 'Porthole no puede comprobar ahora este enlace de consola (su almacén de tokens no responde). Lo volverá a intentar por sí mismo.',
    used: 'Este enlace de consola ya se ha usado: solo abre una sesión. Solicite un enlace nuevo.',
    malformed: 'Este enlace de consola está incompleto o dañado. Copie de nuevo el enlace entero o solicite uno nuevo.',
    tryAgain: 'Reintentar',
    newLink: 'Obtener un enlace nuevo',
    closesIn: 'Se cierra en {minutes} min',
    closesSoon: 'Se cierra en menos de un minuto',
    closesTitle: 'Cuándo se cerrará la sesión de consola',
  },
  ja: {
    loading: '読み込み中…',
    connecting: '接続しています…',
    connectingTo: '{name} に接続しています…',
    connected: '接続しました',
    connectedTo: '{name} に接続しました',
    reconnecting: '接続が切れました。再接続しています…',
    retrying: '接続できません。再試行しています…',
    retryingTo: '{name} に接続できません。再試行しています…',
    disconnected: '切断されました: {reason}',
    disconnectedByUser: '切断されました',
    expired: 'このコンソールリンクは有効期限が切れています。新しいコンソール URL を取得してください。',
    sessionExpired: 'コンソールセッションの有効期限が切れました。新しいコンソール URL を取得してください。',
    unknown: 'このコンソールリンクは無効です（失効したか、存在しません）。新しいリンクを取得してください。',
    missing: 'この URL にはコンソールトークンがありません。',
    limited: 'お使いのアドレスからの失敗した試行が多すぎます。1 分後にもう一度お試しください。',
    idleTimeout: '入力のない状態が続いたため、コンソールを閉じました。［接続］で再び開けます。',
    maxDuration: 'コンソールセッションが最大時間に達しました。［接続］で再び開けます。',
    limitTotal: '開いているコンソールが多すぎるため、コンソールサービスが満杯です。しばらくしてからもう一度お試しください。',
    limitServer: 'このマシンで開いているコンソールが多すぎます。1 つ閉じるか、しばらくしてからもう一度お試しください。',
    limitProject: 'このプロジェクトで開いているコンソールが多すぎます。1 つ閉じるか、しばらくしてからもう一度お試しください。',
    limitClient: 'お使いのアドレスから開いているコンソールが多すぎます。1 つ閉じるか、しばらくしてからもう一度お試しください。',
    unreachable: 'コンソールに接続できません（マシンの電源が切れているか、ホストが停止している可能性があります）。',
    authFailed: 'マシンとの認証に失敗しました。',
    passwordUnsupported: 'マシンがパスワードを要求していますが、このページは対応していません。',
    loadFailed: 'コンソールビューアーを読み込めませんでした。',
    badUrl: 'この URL のコンソールアドレスが正しくありません。',
    ctrlAltDel: 'Ctrl-Alt-Del',
    ctrlAltDelTitle: 'Ctrl-Alt-Del をマシンに送信',
    connect: '接続',
    disconnect: '切断',
    fullscreen: '全画面',
    exitFullscreen: '全画面を終了',
    console: 'コンソール',
    backendRefused: 'マシンの電源が切れているか、コンソールが接続を受け付けていません。',
    backendRefusedTo: '{name} の電源が切れているか、コンソールが接続を受け付けていません。',
    unavailable: '現在このコンソールリンクを確認できません（トークンストアが応答しません）。自動的に再試行します。',
    used: 'このコンソールリンクは使用済みです（1 回のセッションのみ有効）。新しいリンクを取得してください。',
    malformed: 'このコンソールリンクは不完全か破損しています。リンク全体をもう一度コピーするか、新しいリンクを取得してください。',
    tryAgain: '再試行',
    newLink: '新しいリンクを取得',
    closesIn: 'あと {minutes} 分で終了',
    closesSoon: 'あと 1 分以内に終了',
    closesTitle: 'コンソールセッションが閉じられる時刻',
  },
  'zh-CN': {
    loading: '正在加载…',
    connecting: '正在连接…',
    connectingTo: '正在连接 {name}…',
    connected: '已连接',
    connectedTo: '已连接到 {name}',
    reconnecting: '连接已断开，正在重新连接…',
    retrying: '无法连接，正在重试…',
    retryingTo: '无法连接到 {name}，正在重试…',
    disconnected: '已断开：{reason}',
    disconnectedByUser: '已断开',
    expired: '此控制台链接已过期。请申请新的控制台 URL。',
    sessionExpired: '控制台会话已过期。请申请新的控制台 URL。',
    unknown: '此控制台链接无效：它已被撤销或从未存在。请申请新的链接。',
    missing: '此 URL 中没有控制台令牌。',
    limited: '来自您地址的失败尝试过多，请一分钟后重试。',
    idleTimeout: '由于长时间没有输入，控制台已关闭。点击“连接”可重新打开。',
    maxDuration: '控制台会话已达到最长时长。点击“连接”可重新打开。',
    limitTotal: '控制台服务已满：打开的控制台过多。请稍后重试。',
    limitServer: '此虚拟机上打开的控制台过多。请关闭一个，或稍后重试。',
    limitProject: '此项目中打开的控制台过多。请关闭一个，或稍后重试。',
    limitClient: '从您的地址打开的控制台过多。请关闭一个，或稍后重试。',
    unreachable: '无法访问控制台（虚拟机可能已关机或其主机不可用）。',
    authFailed: '与虚拟机的认证失败。',
    passwordUnsupported: '虚拟机要求输入密码，本页面不支持。',
    loadFailed: '无法加载控制台查看器。',
    badUrl: '此 URL 中的控制台地址无效。',
    ctrlAltDel: 'Ctrl-Alt-Del',
    ctrlAltDelTitle: '向虚拟机发送 Ctrl-Alt-Del',
    connect: '连接',
    disconnect: '断开',
    fullscreen: '全屏',
    exitFullscreen: '退出全屏',
    console: '控制台',
    backendRefused: '虚拟机已关机，或其控制台未在监听。',
    backendRefusedTo: '{name} 已关机，或其控制台未在监听。',
    unavailable: '暂时无法验证此控制台链接（令牌存储没有响应）。将自动重试。',
    used: '此控制台链接已被使用：它只能打开一次会话。请申请新的链接。',
    malformed: '此控制台链接不完整或已损坏。请重新复制完整链接，或申请新的链接。',
    tryAgain: '重试',
    newLink: '获取新链接',
    closesIn: '{minutes} 分钟后关闭',
    closesSoon: '不到一分钟后关闭',
    closesTitle: '控制台会话关闭的时间',
  },
};

// ===== Constants =====

// `limited`: the gateway refuses this address for a while (too many failed token lookups from it);
// `limit`: the token is valid, but a console opened now would be refused by a concurrent-console
// limit (the browser's WebSocket never sees the HTTP status, so the page asks after a failure)
// Beyond the store's answer (src/web/pages.ts TokenProblem): `malformed` (not a token's shape:
// a link cut short), `used` (single-use, consumed), `unreachable` (the token is valid but this
// browser's last console with it was refused because the machine's console did not take the
// connection), `unavailable` (the token store did not answer).
const TOKEN_STATES = new Set(['valid', 'expired', 'unknown', 'missing', 'limited', 'limit', 'malformed', 'used', 'unreachable', 'unavailable']);
// Final states whose next step is a new link (a "Get a new link" button when the operator set one).
const NEW_LINK_STATES = new Set(['expired', 'unknown', 'missing', 'malformed', 'used', 'sessionExpired']);
// Which concurrent-console limit (`limit` of the token state), and its words.
const LIMIT_WORDS = { total: 'limitTotal', server: 'limitServer', project: 'limitProject', client: 'limitClient' };
const NOVNC_RFB = '/novnc/core/rfb.js';
const NOVNC_LOGGING = '/novnc/core/util/logging.js';
const TOKEN_STATE_ENDPOINT = '/porthole/token-state';
// Close reasons of the gateway that end a console for good, with the words to show and the state
// the page stays in. Codes and reasons are src/proxy/relay.ts's CLOSE_EXPIRED ([consoleauth]
// enforce_session_timeout: only a new URL helps), CLOSE_IDLE ([porthole] console_idle_timeout)
// and CLOSE_MAX_DURATION ([porthole] max_console_duration): not reconnected by themselves, which
// would undo the limit, but Connect opens the console again while the token is valid. The
// token-state check would not do here: a swept or single-use token reads as `unknown`.
const FINAL_CLOSES = [
  { code: 1008, reason: 'console session expired', words: 'sessionExpired', state: 'refused' },
  { code: 1008, reason: 'console idle timeout', words: 'idleTimeout', state: 'disconnected' },
  { code: 1008, reason: 'console session reached its maximum duration', words: 'maxDuration', state: 'disconnected' },
];

// Reconnect backoff: 1 s, 2 s, 4 s, 8 s, then every 10 s, until the connection has been gone
// for two minutes. Long enough to ride out a Wi-Fi hand-over or a proxy restart behind a load
// balancer; short enough that a machine that is really gone stops costing connection attempts.
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 10_000;
const GIVE_UP_AFTER_MS = 120_000;
// A token-state check that hangs would stall recovery; treat it as failed and back off.
const TOKEN_STATE_TIMEOUT_MS = 10_000;
// While the machine's console refuses connections (off, or its VNC server not listening), or the
// token store does not answer, the page says so at once and tries again at this slower pace; the
// Try again button does not wait.
const WAITING_RETRY_MS = 30_000;
// How often "Closes in N min" is brought up to date.
const TIME_LEFT_TICK_MS = 15_000;

// ===== Page state =====

const page = {
  text: MESSAGES.en,
  state: 'loading', // loading | connecting | connected | reconnecting | disconnected | refused
  status: MESSAGES.en.loading,
  token: null, // never logged: see scrub()
  url: null,
  options: null,
  server: null, // server name from the token state; wins over the RFB desktop name
  desktopName: null,
  RFB: null,
  rfb: null,
  wasConnected: false, // connected at least once since the page loaded or Connect was pressed
  lostAt: 0, // when the current run of failed attempts began (0: none)
  attempt: 0,
  retryTimer: null,
  retryAction: null,
  securityReason: null, // why the last attempt was refused during the RFB handshake
  websocket: null, // the WebSocket of the current attempt, handed to noVNC
  closeWords: null, // the FINAL_CLOSES entry of a close the gateway meant as final
  limitWords: null, // key of the words of the concurrent-console limit the last check reported
  newLinkUrl: null, // [porthole] new_link_url, when the operator set one
  sessionEnd: null, // { endsWithToken, expiresAt, maxDuration, clockOffsetMs } of the token state
  closesAt: 0, // when the live session will be closed by the clock, in this browser's time (0: never)
  timeLeftTimer: null,
  finalWords: null, // key of the words of a final state, for the new-link button
  shared: false, // the token state says the console is shared: each connection gets a viewer key
  sharedViewer: null, // { key, controlUrl } of the current connection on a shared console (viewers.js)
  // Bumped by every user action, so an answer that arrives after the user changed their mind
  // (a token-state check in flight when Disconnect is pressed) is dropped.
  generation: 0,
};

const elements = {};

// ===== URL parameters (as noVNC reads them) =====

/**
 * noVNC's getConfigVar: a parameter in the #fragment wins over one in the ?query. Of repeated
 * parameters the last one counts, as Nova's proxy takes the last `token`.
 */
function readParams() {
  const query = new URLSearchParams(window.location.search);
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const last = (params, name) => {
    const values = params.getAll(name);
    return values.length === 0 ? null : values[values.length - 1];
  };
  return { get: (name) => last(hash, name) ?? last(query, name) };
}

function isTrue(value) {
  return value !== null && /^(1|true|yes|on)$/i.test(value);
}

function isFalse(value) {
  return value !== null && /^(0|false|no|off)$/i.test(value);
}

function readOptions(params) {
  // Scale to fit by default (noVNC's own default is off): the page is mostly embedded in a
  // portal's iframe of whatever size the portal picked, and the whole screen scaled down beats
  // a corner of it with scrollbars. noVNC's `resize` (off|scale|remote) wins over `scale`.
  const resize = params.get('resize');
  const scale = params.get('scale');
  let scaleViewport = true;
  let resizeSession = false;
  if (resize === 'remote') {
    scaleViewport = false;
    resizeSession = true;
  } else if (resize === 'off') {
    scaleViewport = false;
  } else if (resize !== 'scale' && scale !== null) {
    scaleViewport = !isFalse(scale);
  }
  return {
    scaleViewport,
    resizeSession,
    shared: !isFalse(params.get('shared')),
    viewOnly: isTrue(params.get('view_only')),
  };
}

function tokenInPath(path) {
  const start = path.indexOf('?');
  if (start === -1) return null;
  const values = new URLSearchParams(path.slice(start + 1)).getAll('token');
  return values.length === 0 ? null : values[values.length - 1];
}

/**
 * The WebSocket URL and the token it carries, built as noVNC does: Nova hands out
 * `vnc_auto.html?path=%3Ftoken%3D<t>` (WebSocket `/?token=<t>`), noVNC users write
 * `?path=websockify%3Ftoken%3D<t>` or `?token=<t>` (WebSocket `/websockify?token=<t>`). A
 * `token` parameter is added to `path` only when `path` has none (noVNC's injectParamIfMissing).
 */
function websocketTarget(params) {
  const tokenParam = params.get('token');
  let path = params.get('path') ?? 'websockify';
  if (tokenParam !== null && tokenInPath(path) === null) {
    path += `${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(tokenParam)}`;
  }
  const secure = window.location.protocol === 'https:' || isTrue(params.get('encrypt'));
  let host = params.get('host') ?? window.location.hostname;
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`; // a bare IPv6 address
  const port = params.get('port') ?? window.location.port;
  const url = `${secure ? 'wss' : 'ws'}://${host}${port ? `:${port}` : ''}/${path.replace(/^\/+/, '')}`;
  return { url, token: tokenInPath(path) };
}

/** `url` with `name=value` added to its query. */
function withParam(url, name, value) {
  return `${url}${url.includes('?') ? '&' : '?'}${name}=${encodeURIComponent(value)}`;
}

/**
 * A new viewer key for a connection to a shared console, and the URL of its control channel on
 * the same listener (`/porthole/shared`): the proxy pairs the channel with the RFB connection that
 * carried the same key and token. A random UUID from getRandomValues, which plain-HTTP pages have
 * too (crypto.randomUUID is for secure contexts only).
 */
function sharedViewer(websocketUrl, token) {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  const key = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const origin = new URL(websocketUrl).origin;
  const controlUrl = withParam(token === null ? `${origin}/porthole/shared` : withParam(`${origin}/porthole/shared`, 'token', token), 'viewer', key);
  return { key, controlUrl };
}

// ===== Token state =====

function parseTokenState(value) {
  if (value === null || typeof value !== 'object' || !TOKEN_STATES.has(value.state)) {
    throw new Error('token state has an unexpected shape');
  }
  return {
    state: value.state,
    server: typeof value.server === 'string' && value.server !== '' ? value.server : null,
    expiresAt: typeof value.expiresAt === 'number' ? value.expiresAt : null,
    limit: typeof value.limit === 'string' && Object.hasOwn(LIMIT_WORDS, value.limit) ? value.limit : 'total',
    newLinkUrl: webUrl(value.newLinkUrl),
    endsWithToken: value.endsWithToken === true,
    maxDuration: typeof value.maxDuration === 'number' && value.maxDuration > 0 ? value.maxDuration : null,
    // the server's clock against this browser's, so that "closes in" is right on a skewed clock
    clockOffsetMs: typeof value.now === 'number' ? value.now * 1000 - Date.now() : 0,
    // a shared console (viewers.js); a view-only link (a watcher's, an admin's shadow)
    shared: value.shared === true,
    viewOnly: value.viewOnly === true,
  };
}

/** `value` when it is an http(s) URL (the operator's link: never javascript: or the like), else null. */
function webUrl(value) {
  if (typeof value !== 'string') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Keeps what a token state says of the session's end and the operator's link. */
function takeTokenState(tokenState) {
  if (tokenState.newLinkUrl !== null) page.newLinkUrl = tokenState.newLinkUrl;
  page.shared = tokenState.shared;
  if (tokenState.viewOnly && page.options !== null) page.options.viewOnly = true;
  page.sessionEnd = {
    endsWithToken: tokenState.endsWithToken,
    expiresAt: tokenState.expiresAt,
    maxDuration: tokenState.maxDuration,
    clockOffsetMs: tokenState.clockOffsetMs,
  };
}

/** The state the server injected at `<!--PORTHOLE_STATE-->`, or null when there is none. */
function readInjectedState() {
  const element = document.getElementById('porthole-state');
  if (element === null) return null;
  try {
    return parseTokenState(JSON.parse(element.textContent));
  } catch {
    return null;
  }
}

async function fetchTokenState() {
  // Without a token of its own the page still asks: the server may know it from a cookie.
  const query = page.token === null ? '' : `?token=${encodeURIComponent(page.token)}`;
  const response = await fetch(`${TOKEN_STATE_ENDPOINT}${query}`, {
    cache: 'no-store',
    credentials: 'same-origin',
    signal: AbortSignal.timeout?.(TOKEN_STATE_TIMEOUT_MS),
  });
  // 429 and 503 come with a state too (`limited`, `unavailable`): the words to show meanwhile
  if (!response.ok && response.status !== 429 && response.status !== 503) throw new Error(`token state answered HTTP ${response.status}`);
  return parseTokenState(await response.json());
}

// ===== Status =====

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => values[key] ?? whole);
}

function displayName() {
  return page.server ?? page.desktopName;
}

/** `key` or, when the machine's name is known, `keyTo` with the name filled in. */
function withName(key) {
  const name = displayName();
  return name === null ? page.text[key] : format(page.text[`${key}To`], { name });
}

function disconnectedBecause(reason) {
  return format(page.text.disconnected, { reason });
}

function setStatus(state, text) {
  page.state = state;
  page.status = text;
  elements.status.textContent = text;
  elements.status.title = text; // the whole sentence when the bar is too narrow for it
  // Repeated large over the empty screen when there is no session (CSS generated content, so
  // the words exist once in the DOM: in #status).
  elements.screen.dataset.message = text;
  document.body.dataset.consoleState = state;
  updateButtons();
}

function updateTitle() {
  const name = displayName();
  document.title = name === null ? page.text.console : `${name} – ${page.text.console}`;
}

// A button that can do nothing is not shown (issue 16: no dead buttons): Ctrl-Alt-Del only with a
// session that takes input (disabled while it is set up), Connect never on a refused page (only a
// new link helps there) nor without noVNC, Fullscreen only with something to show.
function updateButtons() {
  const live = page.state === 'connecting' || page.state === 'connected' ||
    page.state === 'reconnecting';
  elements.ctrlAltDel.hidden = !live || page.options?.viewOnly === true || page.rfb?.viewOnly === true;
  elements.ctrlAltDel.disabled = page.state !== 'connected';
  elements.connect.textContent = live ? page.text.disconnect
    : page.state === 'waiting' ? page.text.tryAgain : page.text.connect;
  elements.connect.hidden = page.RFB === null || page.state === 'refused';
  elements.connect.disabled = false; // disabled in the HTML until the page knows what it can do
  const newLink = page.state === 'refused' && page.newLinkUrl !== null && NEW_LINK_STATES.has(page.finalWords);
  elements.newLink.hidden = !newLink;
  if (newLink) elements.newLink.href = page.newLinkUrl;
  updateFullscreenButton();
  updateTimeLeft();
}

/** When the clock will close a session that starts now (the token's expiry, the maximum duration), or 0. */
function sessionClosesAt() {
  const end = page.sessionEnd;
  if (end === null) return 0;
  const ends = [];
  if (end.endsWithToken && end.expiresAt !== null) ends.push(end.expiresAt * 1000 - end.clockOffsetMs);
  if (end.maxDuration !== null) ends.push(Date.now() + end.maxDuration * 1000);
  return ends.length === 0 ? 0 : Math.min(...ends);
}

function updateTimeLeft() {
  const show = page.state === 'connected' && page.closesAt > 0;
  elements.timeLeft.hidden = !show;
  if (!show) {
    if (page.timeLeftTimer !== null) clearInterval(page.timeLeftTimer);
    page.timeLeftTimer = null;
    return;
  }
  const ms = page.closesAt - Date.now();
  elements.timeLeft.textContent = ms < 60_000
    ? page.text.closesSoon
    : format(page.text.closesIn, { minutes: String(Math.ceil(ms / 60_000)) });
  page.timeLeftTimer ??= setInterval(updateTimeLeft, TIME_LEFT_TICK_MS);
}

function updateFullscreenButton() {
  // not in an iframe without allow=fullscreen, nor over a page that has nothing to show
  elements.fullscreen.hidden = !document.fullscreenEnabled || page.state === 'refused' || page.state === 'loading';
  elements.fullscreen.textContent = document.fullscreenElement
    ? page.text.exitFullscreen
    : page.text.fullscreen;
}

// ===== Logging =====

/** Anything the page logs goes through here: the token is a credential (as Nova's `token='***'`). */
function scrub(text) {
  if (page.token === null || page.token === '') return text;
  return text.split(page.token).join('***').split(encodeURIComponent(page.token)).join('***');
}

function logError(what, error) {
  console.error(`porthole: ${what}: ${scrub(String(error?.message ?? error))}`);
}

// ===== Session =====

function connect() {
  clearRetry();
  page.securityReason = null;
  page.closeWords = null;
  let rfb;
  try {
    // The page opens the WebSocket itself so that it sees the close code and reason, which
    // noVNC keeps to itself (its disconnect event tells only `clean`).
    page.sharedViewer = page.shared ? sharedViewer(page.url, page.token) : null;
    const ws = new WebSocket(page.sharedViewer === null ? page.url : withParam(page.url, 'viewer', page.sharedViewer.key), ['binary']);
    ws.addEventListener('close', (event) => websocketOnClose(ws, event));
    page.websocket = ws;
    rfb = new page.RFB(elements.screen, ws, { shared: page.options.shared });
  } catch (error) {
    // new WebSocket() throws on a malformed URL, with the URL (and token) in its message.
    logError('could not open the console', error);
    stop('disconnected', page.text.badUrl);
    return;
  }
  page.rfb = rfb;
  // the clipboard panel (clipboard.js) follows each RFB object the page makes
  document.dispatchEvent(new CustomEvent('porthole:rfb', { detail: rfb }));
  rfb.scaleViewport = page.options.scaleViewport;
  rfb.resizeSession = page.options.resizeSession;
  rfb.viewOnly = page.options.viewOnly;
  rfb.background = getComputedStyle(document.body).backgroundColor;
  rfb.addEventListener('connect', () => rfbOnConnect(rfb));
  rfb.addEventListener('disconnect', (event) => rfbOnDisconnect(rfb, event));
  rfb.addEventListener('securityfailure', (event) => rfbOnSecurityFailure(rfb, event));
  rfb.addEventListener('credentialsrequired', () => rfbOnCredentialsRequired(rfb));
  rfb.addEventListener('desktopname', (event) => rfbOnDesktopName(rfb, event));
  // While recovering or waiting for the machine, the bar keeps saying so until an attempt succeeds.
  if (page.state !== 'reconnecting' && page.state !== 'waiting') setStatus('connecting', withName('connecting'));
}

function rfbOnConnect(rfb) {
  if (page.rfb !== rfb) return;
  page.wasConnected = true;
  page.limitWords = null;
  page.lostAt = 0;
  page.attempt = 0;
  page.closesAt = sessionClosesAt();
  setStatus('connected', withName('connected'));
  rfb.focus({ preventScroll: true });
}

function rfbOnDisconnect(rfb) {
  // detail.clean says nothing useful here: a WebSocket that dies while connected is "clean" to
  // noVNC, so every disconnect the user did not ask for is checked against the token's state.
  if (page.rfb !== rfb) return; // the user pressed Disconnect, or a newer attempt replaced it
  page.rfb = null;
  if (page.closeWords !== null) {
    // The gateway ended the session for good (token expired, idle, maximum duration): no reconnect.
    page.finalWords = page.closeWords.words;
    stop(page.closeWords.state, disconnectedBecause(page.text[page.closeWords.words]));
    return;
  }
  if (page.securityReason !== null) {
    // Refused in the RFB handshake: not a network blip, trying again would fail the same way.
    stop('disconnected', disconnectedBecause(page.securityReason));
    return;
  }
  recover();
}

/** Runs before noVNC's own close handler, so `closeWords` is set when its disconnect event comes. */
function websocketOnClose(ws, event) {
  if (page.websocket !== ws) return;
  const final = FINAL_CLOSES.find((c) => c.code === event.code && c.reason === event.reason);
  if (final !== undefined) page.closeWords = final;
}

function rfbOnSecurityFailure(rfb, event) {
  if (page.rfb !== rfb) return;
  // The reason string comes from the gateway's SecurityResult; shown as text, never as HTML.
  const reason = event.detail?.reason;
  page.securityReason = typeof reason === 'string' && reason !== '' ? reason : page.text.authFailed;
}

function rfbOnCredentialsRequired(rfb) {
  if (page.rfb !== rfb) return;
  // The gateway does the machine's authentication itself and offers the browser only None;
  // a password prompt means something else answered, and this page has no password field.
  page.securityReason = page.text.passwordUnsupported;
  rfb.disconnect();
}

function rfbOnDesktopName(rfb, event) {
  if (page.rfb !== rfb) return;
  const name = event.detail?.name;
  page.desktopName = typeof name === 'string' && name !== '' ? name : null;
  updateTitle();
  if (page.state === 'connected') setStatus('connected', withName('connected'));
}

/** After a disconnect nobody asked for: reconnect while the token is valid, else say why not. */
function recover() {
  const generation = page.generation;
  if (page.lostAt === 0) page.lostAt = Date.now();
  if (Date.now() - page.lostAt > GIVE_UP_AFTER_MS) {
    stop('disconnected', page.limitWords !== null ? page.text[page.limitWords] : disconnectedBecause(page.text.unreachable));
    return;
  }
  if (page.limitWords === null && page.state !== 'waiting') setStatus('reconnecting', page.wasConnected ? page.text.reconnecting : withName('retrying'));
  fetchTokenState().then(
    (tokenState) => {
      if (generation !== page.generation) return;
      takeTokenState(tokenState);
      if (tokenState.state === 'unreachable' || tokenState.state === 'unavailable') {
        // the gateway refused the last attempt because the machine's console did not take it
        // (or could not look the token up): not a network blip, so say it now and retry slowly
        wait(tokenState.state);
        return;
      }
      if (tokenState.state === 'limited') {
        // not about this token: the address is refused for a while, so ask again later
        setStatus('reconnecting', page.text.limited);
        retryAfterBackoff(recover);
        return;
      }
      if (tokenState.state === 'limit') {
        // the console was (or would be) refused by a concurrent-console limit: say which, and
        // try again as a place may free up
        page.limitWords = LIMIT_WORDS[tokenState.limit];
        setStatus('reconnecting', page.text[page.limitWords]);
        retryAfterBackoff(connect);
        return;
      }
      page.limitWords = null;
      if (tokenState.state !== 'valid') {
        refuse(tokenState.state);
        return;
      }
      // a valid token again after waiting: back to the usual pace
      if (page.state === 'waiting') setStatus('reconnecting', withName('retrying'));
      if (tokenState.server !== null) page.server = tokenState.server;
      retryAfterBackoff(connect);
    },
    () => {
      // The check failed too (the network is still down, or the gateway is restarting): the
      // next connection attempt is as good a probe as another check, and if it fails we are
      // back here with a longer wait.
      if (generation !== page.generation) return;
      retryAfterBackoff(connect);
    },
  );
}

function retryAfterBackoff(action) {
  clearRetry();
  const delay = Math.min(BACKOFF_FIRST_MS * 2 ** page.attempt, BACKOFF_MAX_MS);
  page.attempt += 1;
  page.retryAction = action;
  page.retryTimer = setTimeout(() => {
    page.retryTimer = null;
    page.retryAction = null;
    action();
  }, delay);
}

/**
 * The machine's console refuses connections (`unreachable`) or the token store does not answer
 * (`unavailable`): say so, offer Try again, and try again by itself every WAITING_RETRY_MS for as
 * long as the token stays valid (each attempt asks the token state again when it fails).
 */
function wait(reason) {
  clearRetry();
  page.lostAt = 0;
  page.attempt = 0;
  setStatus('waiting', reason === 'unreachable' ? withName('backendRefused') : page.text.unavailable);
  page.retryAction = reason === 'unreachable' ? connect : recover;
  page.retryTimer = setTimeout(() => {
    const action = page.retryAction;
    page.retryTimer = null;
    page.retryAction = null;
    action();
  }, WAITING_RETRY_MS);
}

function clearRetry() {
  if (page.retryTimer !== null) clearTimeout(page.retryTimer);
  page.retryTimer = null;
  page.retryAction = null;
}

/** The token is not (or no longer) valid: say so and stop for good. */
function refuse(tokenState) {
  page.finalWords = ['expired', 'missing', 'limited', 'used', 'malformed'].includes(tokenState) ? tokenState : 'unknown';
  const words = page.text[page.finalWords];
  stop('refused', page.wasConnected ? disconnectedBecause(words) : words);
}

function stop(state, text) {
  clearRetry();
  page.generation += 1;
  setStatus(state, text);
}

// ===== User actions =====

function ctrlAltDelOnClick() {
  page.rfb?.sendCtrlAltDel();
  page.rfb?.focus({ preventScroll: true });
}

function connectOnClick() {
  if (page.state === 'connecting' || page.state === 'connected' || page.state === 'reconnecting') {
    const rfb = page.rfb;
    page.rfb = null; // its disconnect event is now ignored: this one was asked for
    rfb?.disconnect();
    stop('disconnected', page.text.disconnectedByUser);
    return;
  }
  page.generation += 1;
  page.wasConnected = false;
  page.limitWords = null;
  page.lostAt = 0;
  page.attempt = 0;
  // Try again while an attempt of the slow retry is under way: that one is dropped
  const pending = page.rfb;
  page.rfb = null;
  pending?.disconnect();
  if (page.state === 'waiting') setStatus('connecting', withName('connecting'));
  connect();
}

function fullscreenOnClick() {
  const done = document.fullscreenElement
    ? document.exitFullscreen()
    : document.documentElement.requestFullscreen();
  done.catch(() => {}).finally(() => page.rfb?.focus({ preventScroll: true }));
}

function windowOnOnline() {
  // The network is back: no need to sit out the rest of the backoff.
  if (page.retryTimer === null) return;
  const action = page.retryAction;
  clearRetry();
  action();
}

// ===== Start =====

function pickLanguage(requested) {
  const candidates = [requested, ...(navigator.languages ?? [navigator.language])];
  for (const tag of candidates) {
    if (typeof tag !== 'string' || tag === '') continue;
    const primary = tag.toLowerCase().split(/[-_]/)[0];
    // One Chinese table, in Simplified characters, for every zh-* tag.
    if (primary === 'zh') return 'zh-CN';
    if (Object.hasOwn(MESSAGES, primary)) return primary;
  }
  return 'en';
}

function setUpPage(language) {
  page.text = MESSAGES[language];
  document.documentElement.lang = language;
  for (const id of ['status', 'screen', 'ctrl-alt-del', 'connect', 'fullscreen', 'time-left', 'new-link']) {
    elements[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = document.getElementById(id);
  }
  elements.ctrlAltDel.textContent = page.text.ctrlAltDel;
  elements.ctrlAltDel.title = page.text.ctrlAltDelTitle;
  elements.newLink.textContent = page.text.newLink;
  elements.timeLeft.title = page.text.closesTitle;
  elements.ctrlAltDel.addEventListener('click', ctrlAltDelOnClick);
  elements.connect.addEventListener('click', connectOnClick);
  elements.fullscreen.addEventListener('click', fullscreenOnClick);
  document.addEventListener('fullscreenchange', updateFullscreenButton);
  // a watcher of a shared console is view-only until it has control (viewers.js says so on <body>)
  new MutationObserver(updateButtons).observe(document.body, { attributes: true, attributeFilter: ['data-view-only'] });
  window.addEventListener('online', windowOnOnline);
  updateFullscreenButton();
  updateTitle();
  setStatus('loading', page.text.loading);
}

async function loadNoVnc() {
  const [{ default: RFB }, logging] = await Promise.all([
    import(NOVNC_RFB),
    import(NOVNC_LOGGING),
  ]);
  // noVNC logs the WebSocket URL, token included, at 'info'; keep it at its default 'warn'.
  logging.initLogging('warn');
  return RFB;
}

async function main() {
  const params = withSettings(readParams());
  setUpPage(pickLanguage(params.get('lang')));
  window.porthole = {
    get rfb() { return page.rfb; },
    get status() { return page.status; },
    get state() { return page.state; },
    get shared() { return page.sharedViewer; },
  };
  page.options = readOptions(params);
  ({ url: page.url, token: page.token } = websocketTarget(params));

  let tokenState = readInjectedState();
  if (tokenState?.state === 'missing' && page.token !== null) {
    // A token the server could not see (in the #fragment): ask about it.
    tokenState = await fetchTokenState().catch(() => null);
  }
  // With no state at all (the page served by something other than Porthole), connect and let
  // the connection tell, as noVNC does.
  if (tokenState !== null) {
    page.server = tokenState.server;
    takeTokenState(tokenState);
    updateTitle();
    // `limit`: the connection is refused and the check after it says which limit, in words;
    // `unreachable`: a reload is a new try; `unavailable`: noVNC is loaded, then the page waits
    if (!['valid', 'limit', 'unreachable', 'unavailable'].includes(tokenState.state)) {
      refuse(tokenState.state);
      return;
    }
  }

  try {
    page.RFB = await loadNoVnc();
  } catch (error) {
    logError('noVNC could not be loaded', error);
    stop('disconnected', page.text.loadFailed);
    return;
  }
  if (tokenState?.state === 'unavailable') {
    wait('unavailable');
    return;
  }
  connect();
}

main();
