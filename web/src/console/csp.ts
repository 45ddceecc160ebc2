// The page's CSP refuses inline styles (style-src 'self' plus a nonce, src/web/http.ts).
// xterm.js's DOM renderer and viewport put their theme, cell size and scrollbar rules in
// <style> elements they create when the terminal opens. Those elements, and only those, get
// the nonce the server sent with this page: while `open` runs, document.createElement hands
// the nonce to each <style> it makes, before xterm inserts it. Scripts stay 'self' only, style
// attributes stay refused, and markup from elsewhere (never innerHTML here) gets no nonce.
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? '';

export function withStyleNonce<T>(open: () => T): T {
  const original = document.createElement;
  document.createElement = function (this: Document, tag: string, options?: ElementCreationOptions) {
    const element = original.call(this, tag, options);
    if (nonce && element instanceof HTMLStyleElement) element.nonce = nonce;
    return element;
  } as typeof document.createElement;
  try {
    return open();
  } finally {
    // The wrapper was an own property of this document; the prototype's method shows again.
    Reflect.deleteProperty(document, 'createElement');
  }
}
