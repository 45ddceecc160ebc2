// XML for test fixtures (host definitions, domains, pools, volumes), written
// with the project's own XML module so that tests, too, never paste strings
// into markup. Numbers are accepted for convenience.
import { el as element, serializeXml, type XmlElement } from '../../src/hypervisors/xml.js';

export type { XmlElement };
export type Child = XmlElement | string | number | undefined | false | null;

export function el(
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  ...children: Child[]
): XmlElement {
  return element(name, attrs, ...children.map((child) => (typeof child === 'number' ? String(child) : child)));
}

export function serialize(node: XmlElement): string {
  return serializeXml(node);
}
