#!/usr/bin/env node
// `kubectl virtfleet …`: kubectl runs an executable named kubectl-virtfleet found on PATH with the
// arguments after the plugin name (and the user's environment: KUBECONFIG, the current context).
// It is the same program as `virtfleet`; main.ts names itself after the executable it runs as.
import './main.js';
