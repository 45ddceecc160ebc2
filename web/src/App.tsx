// The shell: login until there is a session, then the navigation and the page of the route.
import { createResource, lazy, Match, Show, Switch } from 'solid-js';
import { clearAccessCache, loadSession, logout, session } from './api';
import { Fleet } from './pages/Fleet';
import { Hosts } from './pages/Hosts';
import { Login } from './pages/Login';
import { Profiles } from './pages/Profiles';
import { VmDetail } from './pages/VmDetail';
import { Vms } from './pages/Vms';
import { Link, location, navigate } from './router';

// The form carries the VM CRD's schema (TypeBox): its own chunk, loaded when the form opens.
const CreateVm = lazy(() => import('./pages/CreateVm').then((m) => ({ default: m.CreateVm })));

export function App() {
  const [loaded] = createResource(loadSession);
  const path = () => location().pathname;
  const namespace = () => location().searchParams.get('namespace') ?? '';
  const detail = () => /^\/vms\/([^/]+)\/([^/]+)$/.exec(path());
  return (
    <Show when={loaded.state === 'ready' || loaded.state === 'errored'} fallback={<p role="status">loading…</p>}>
      <Show when={session()} fallback={<Login />}>
        {(current) => (
          <>
            <header class="top">
              <nav aria-label="main">
                <strong class="brand">virtfleet</strong>
                <Link href="/fleet" aria-current={path() === '/fleet' || path() === '/' ? 'page' : undefined}>
                  Fleet
                </Link>
                <Link href="/vms" aria-current={path().startsWith('/vms') ? 'page' : undefined}>
                  VMs
                </Link>
                <Link href="/hosts" aria-current={path() === '/hosts' ? 'page' : undefined}>
                  Hosts
                </Link>
                <Link href="/profiles" aria-current={path() === '/profiles' ? 'page' : undefined}>
                  Install profiles
                </Link>
              </nav>
              <span class="user" data-user>
                {current().user.name}
              </span>
              <button
                type="button"
                onClick={() => {
                  clearAccessCache();
                  void logout().then(() => navigate('/', true));
                }}
              >
                Log out
              </button>
            </header>
            <Switch
              fallback={
                <Show keyed when={{ namespace: namespace() }}>
                  {(scope) => <Fleet namespace={scope.namespace} />}
                </Show>
              }
            >
              <Match when={path() === '/vms/new'}>
                <CreateVm namespace={namespace()} />
              </Match>
              <Match when={detail()} keyed>
                {(match) => <VmDetail namespace={decodeURIComponent(match[1]!)} name={decodeURIComponent(match[2]!)} />}
              </Match>
              <Match when={path() === '/hosts'}>
                <Hosts />
              </Match>
              <Match when={path() === '/profiles'}>
                <Show keyed when={{ namespace: namespace() }}>
                  {(scope) => <Profiles namespace={scope.namespace} />}
                </Show>
              </Match>
              <Match when={path() === '/vms'}>
                <Show keyed when={{ namespace: namespace() }}>
                  {(scope) => <Vms namespace={scope.namespace} />}
                </Show>
              </Match>
            </Switch>
          </>
        )}
      </Show>
    </Show>
  );
}
