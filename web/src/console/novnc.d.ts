// The part of noVNC's RFB class (@novnc/novnc, which ships no types) the VNC tab uses.
declare module '@novnc/novnc' {
  export default class RFB extends EventTarget {
    constructor(target: HTMLElement, urlOrChannel: string | WebSocket, options?: Record<string, unknown>);
    scaleViewport: boolean;
    viewOnly: boolean;
    disconnect(): void;
  }
}
