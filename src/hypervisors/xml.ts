// XML in and out, through fast-xml-parser (its XMLBuilder writes, its XMLParser reads).
//
// Writing: callers describe elements with el(); the library escapes every text and attribute
// value (& < > " '), including '&' that already looks like an entity, so a value comes back
// exactly as given and can never become markup. Element and attribute *names* must be
// constants: they are not escaped (none is ever taken from user input).
// Reading: a small plain tree of element names, attributes, child elements and text.
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Text directly inside the element (child elements' text not included). */
  text: string;
}

/** What el() takes as children: elements and text; undefined, false and null are left out. */
export type XmlChild = XmlElement | string | undefined | false | null;

/** An element; attributes whose value is undefined are left out. */
export function el(
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  ...children: XmlChild[]
): XmlElement {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined) kept[key] = String(value);
  const elements: XmlElement[] = [];
  let text = '';
  for (const c of children) {
    if (c === undefined || c === false || c === null) continue;
    if (typeof c === 'string') text += c;
    else elements.push(c);
  }
  if (text !== '' && elements.length > 0) throw new Error(`<${name}>: mixed content is not supported`);
  return { name, attrs: kept, children: elements, text };
}

// fast-xml-parser's ordered form: [{ tag: [children…], ':@': { attr: value } }, { '#text': … }].
type Ordered = Record<string, unknown>;

function toOrdered(element: XmlElement): Ordered {
  const content: Ordered[] = element.text !== '' ? [{ '#text': element.text }] : element.children.map(toOrdered);
  const node: Ordered = { [element.name]: content };
  if (Object.keys(element.attrs).length > 0) node[':@'] = { ...element.attrs };
  return node;
}

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  suppressEmptyNode: true,
  processEntities: true,
  format: true,
  indentBy: '  ',
});

export function serializeXml(root: XmlElement): string {
  return `${(builder.build([toOrdered(root)]) as string).trim()}\n`;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // Decodes numeric character references (&#10;) as well as the five XML entities.
  htmlEntities: true,
});

/** Parses `xml`; throws on XML that is not well formed. */
export function parseXml(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const nodes = parser.parse(xml) as Ordered[];
  const root = nodes.map(fromOrdered).find((node): node is XmlElement => node !== undefined);
  if (!root) throw new Error('XML without a root element');
  return root;
}

function fromOrdered(node: Ordered): XmlElement | undefined {
  const name = Object.keys(node).find((key) => key !== ':@' && key !== '#text' && !key.startsWith('?'));
  if (name === undefined) return undefined;
  const attrs = { ...((node[':@'] as Record<string, string> | undefined) ?? {}) };
  const content = (node[name] as Ordered[] | undefined) ?? [];
  const children = content.map(fromOrdered).filter((c): c is XmlElement => c !== undefined);
  const text = content.map((c) => (typeof c['#text'] === 'string' ? c['#text'] : '')).join('');
  // Whitespace between child elements is layout, not text.
  return { name, attrs, children, text: children.length > 0 ? text.trim() : text };
}

/** Child elements of `parent` named `name`. */
export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((c) => c.name === name);
}

/** The first element down a path of names: child(domain, 'devices', 'disk'). */
export function child(parent: XmlElement, ...path: string[]): XmlElement | undefined {
  let node: XmlElement | undefined = parent;
  for (const name of path) node = node && childrenNamed(node, name)[0];
  return node;
}
