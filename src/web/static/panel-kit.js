/**
 * @module porthole/panel-kit
 *
 * What the console page's panels (clipboard.js, keys.js, settings.js, touch-keyboard.js,
 * viewers.js) share: the page's language's words, `{name}` placeholders filled in, and elements
 * built from a property list. One copy, so a fix reaches every panel.
 */

/** The words of the page's language (`<html lang>`), English when the panel has none in it. */
export function pickText(messages) {
  const lang = document.documentElement.lang;
  return Object.hasOwn(messages, lang) ? messages[lang] : messages.en;
}

/** `template` with each `{name}` replaced by `values[name]` (empty when missing). */
export function format(template, values = {}) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ''));
}

// set as attributes: ARIA and data-* have no properties, `for` is `htmlFor`, the others are attributes on Safari
const ATTRIBUTES = new Set(['role', 'for', 'autocapitalize', 'autocorrect']);

/** An element `tag` with `props` (properties, or attributes where they must be) and `children`. */
export function make(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith('aria-') || key.startsWith('data-') || ATTRIBUTES.has(key)) element.setAttribute(key, value);
    else element[key] = value;
  }
  element.append(...children);
  return element;
}
