// Every call the console makes goes through here: the session endpoints (/session) and the
// HTTP/JSON API mounted under /api (the same routes and roles a shop uses, docs/openapi.json).
// Changes carry the session's CSRF token in X-CSRF-Token; the session cookie is HttpOnly, so
// this code never sees it.

export interface Who {
  name: string;
  role: string;
}

export interface SessionState {
  signed_in: boolean;
  sign_in_required: boolean;
  who: Who | null;
  csrf: string | null;
  time_zone: string;
}

/** An RFC 9457 problem from the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly name_: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = '';
let onSignedOut: () => void = () => {};

export function useSession(state: SessionState) {
  csrfToken = state.csrf ?? '';
}

export function whenSignedOut(callback: () => void) {
  onSignedOut = callback;
}

async function send(method: string, url: string, body?: unknown, extra?: Record<string, string>): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...extra };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', String(e));
  }
}

async function answer<T>(response: Response): Promise<T> {
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const problem = (json ?? {}) as { detail?: string; title?: string; name?: string };
    throw new ApiError(response.status, problem.name ?? 'http', problem.detail ?? problem.title ?? response.statusText);
  }
  return json as T;
}

/** Call the HTTP API: `path` as in docs/openapi.json (e.g. `/v1/stock`). */
export async function api<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
  const response = await send(method, '/api' + path, body, headers);
  if (response.status === 401) onSignedOut();
  return answer<T>(response);
}

export async function readSession(): Promise<SessionState> {
  return answer<SessionState>(await send('GET', '/session'));
}

export async function signIn(key: string): Promise<SessionState> {
  return answer<SessionState>(await send('POST', '/session', { key }));
}

export async function signOut(): Promise<void> {
  await answer<unknown>(await send('DELETE', '/session'));
}

// ----- the API's answers, as far as the console reads them -----

export interface OrderSummary {
  id: number;
  channel: string;
  external_id: string;
  status: string;
  buyer: string;
  paid_cents: number;
  holds: string[];
  created_at_ms: number;
}

export interface ExportRow {
  sku: number;
  code: string;
  available: number;
}

export interface WarehouseStock {
  warehouse: string;
  warehouse_id: number;
  on_hand: number;
  reserved: number;
  pooled: number;
  safety: number;
  damaged: number;
  quality_control: number;
  available: number;
}

export interface StockBody {
  sku: string;
  sku_id: number;
  on_hand: number;
  reserved: number;
  pooled: number;
  unavailable: number;
  available: number;
  incoming: number;
  kit: { sku: string; qty: number }[];
  warehouses: WarehouseStock[];
}

export interface AllocationBody {
  sku: string;
  warehouse: string;
  qty: number;
}

export interface ReservationBody {
  id: string;
  status: string;
  customer: number;
  channel: string;
  campaign: number | null;
  created_at_ms: number;
  expires_at_ms: number;
  allocations: AllocationBody[];
}

/** Fetch many things with at most `width` requests in flight. */
export async function inParallel<T, R>(items: T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return results;
}
