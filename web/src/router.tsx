// Client-side routes on the History API: /fleet, /vms, /vms/<namespace>/<name>, /hosts, /profiles. The server
// answers index.html for any of them (src/web/static.ts).
import { createSignal, type JSX } from 'solid-js';

const [location, setLocation] = createSignal(new URL(window.location.href));
window.addEventListener('popstate', () => setLocation(new URL(window.location.href)));
export { location };

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  setLocation(new URL(window.location.href));
}

export function Link(props: { href: string; class?: string; children: JSX.Element; 'aria-current'?: 'page' }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-current={props['aria-current']}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}
