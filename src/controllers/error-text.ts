// errorText lives in the runtime, so that layers below the controllers (src/hosts) share it.
export { errorText } from '../runtime/error-text.js';
