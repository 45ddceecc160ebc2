// Waiting for what a rig test expects, with a deadline and never a sleep:
// subscribe first, act, then await.
import type {
  CloseEvent,
  DomainEvent,
  LibvirtConnection,
  LifecycleEvent,
} from '../../src/hypervisors/libvirt/native/index.js';

function withDeadline<T>(
  what: string,
  timeoutMs: number,
  start: (resolve: (value: T) => void) => () => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let stop: () => void = () => {};
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${what}: not seen within ${timeoutMs} ms`));
    }, timeoutMs);
    stop = start((value) => {
      clearTimeout(timer);
      stop();
      resolve(value);
    });
  });
}

/** The first domain event that matches, within `timeoutMs`. */
export function domainEvent(
  conn: LibvirtConnection,
  match: (event: DomainEvent) => boolean,
  timeoutMs: number,
  what = 'domain event',
): Promise<DomainEvent> {
  return withDeadline(what, timeoutMs, (resolve) => conn.onDomainEvent((event) => match(event) && resolve(event)));
}

/** The first lifecycle event `event` of domain `uuid`, within `timeoutMs`. */
export function lifecycleEvent(
  conn: LibvirtConnection,
  uuid: string,
  event: LifecycleEvent['event'],
  timeoutMs: number,
): Promise<LifecycleEvent> {
  return domainEvent(
    conn,
    (e) => e.type === 'lifecycle' && e.domain.uuid === uuid && e.event === event,
    timeoutMs,
    `lifecycle ${event} of ${uuid}`,
  ) as Promise<LifecycleEvent>;
}

/** The connection's close event, within `timeoutMs`. */
export function closeEvent(conn: LibvirtConnection, timeoutMs: number): Promise<CloseEvent> {
  return withDeadline(`close of ${conn.uri}`, timeoutMs, (resolve) => conn.onClose(resolve));
}
