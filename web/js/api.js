// api.js: the REST calls the console makes (docs/api.md), with the bearer token.
//
// Every path the console uses is in this file, so a change of the API touches one place.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_' + status;
  }
}

const enc = encodeURIComponent;

export class Api {
  /** base: '' for the same origin (the daemon serves the console). */
  constructor(token, base = '') {
    this.token = token;
    this.base = base;
  }

  /** Returns the parsed JSON body (null for an empty one); throws ApiError on a non-2xx answer. */
  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(this.base + path, init);
    } catch (e) {
      throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
    }
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!res.ok) {
      const err = json && json.error ? json.error : {};
      throw new ApiError(res.status, err.code, err.message || res.statusText);
    }
    return json;
  }

  /** The token's principal {role, extension} (GET /v1/me); null when the server has no such route. */
  async me() {
    try {
      return await this.request('GET', '/v1/me');
    } catch (e) {
      if (e.status === 404 || e.status === 405) return null;
      throw e;
    }
  }

  agent(ext) {
    return this.request('GET', `/v1/agents/${enc(ext)}`);
  }

  queues() {
    return this.request('GET', '/v1/queues');
  }

  calls() {
    return this.request('GET', '/v1/calls');
  }

  /** A stream for one agent: {token, urls...} (docs/streams.md). */
  subscribeAgent(ext, queues) {
    const body = queues && queues.length ? { queues } : {};
    return this.request('POST', `/v1/agents/${enc(ext)}/subscriptions`, body);
  }

  /** The supervisor stream of all events. */
  subscribeAll() {
    return this.request('POST', '/v1/subscriptions', {});
  }

  pause(queue, iface, reason) {
    const body = reason ? { reason } : {};
    return this.request('POST', `/v1/queues/${enc(queue)}/members/${enc(iface)}/pause`, body);
  }

  unpause(queue, iface) {
    return this.request('POST', `/v1/queues/${enc(queue)}/members/${enc(iface)}/unpause`, {});
  }

  /**
   * Click-to-dial: ring the agent's phone, and once it is answered dial `number`. Returns
   * {actionId, channelId, ...}; a failure arrives later as originateFailed on the agent's stream.
   */
  dial(ext, number) {
    return this.request('POST', '/v1/calls', { agent: ext, number });
  }
}
