// Reservations: hold a cart (POST /v1/reservations with an Idempotency-Key, so a retried click
// holds once), look one up by id, confirm, release or ship it. The API has no list of
// reservations; the page remembers the ids used in this browser tab.
import { FormEvent, useCallback, useEffect, useState } from 'react';
import { api, ReservationBody } from '../api';
import { dateTime } from '../format';
import { useLocale } from '../i18n';

const REMEMBERED = 'omsd-console-reservations';

function remembered(): string[] {
  try {
    return JSON.parse(sessionStorage.getItem(REMEMBERED) ?? '[]') as string[];
  } catch {
    return [];
  }
}

function remember(ids: string[]) {
  try {
    sessionStorage.setItem(REMEMBERED, JSON.stringify(ids.slice(0, 50)));
  } catch {
    // Storage off: the list lasts for this page only.
  }
}

export function Reservations() {
  const { t } = useLocale();
  const [ids, setIds] = useState<string[]>(remembered());
  const [views, setViews] = useState<Record<string, ReservationBody>>({});
  const [lookup, setLookup] = useState('');
  const [sku, setSku] = useState('');
  const [qty, setQty] = useState('1');
  const [minutes, setMinutes] = useState('15');
  const [error, setError] = useState('');

  const read = useCallback(async (id: string) => {
    const view = await api<ReservationBody>('GET', `/v1/reservations/${encodeURIComponent(id)}`);
    setViews((old) => ({ ...old, [id]: view }));
  }, []);

  const add = useCallback((id: string) => {
    setIds((old) => {
      const next = [id, ...old.filter((x) => x !== id)];
      remember(next);
      return next;
    });
  }, []);

  useEffect(() => {
    for (const id of ids) read(id).catch(() => undefined);
  }, [ids, read]);

  const guard = async (work: () => Promise<void>) => {
    setError('');
    try {
      await work();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const find = (event: FormEvent) => {
    event.preventDefault();
    const id = lookup.trim();
    guard(async () => {
      await read(id);
      add(id);
      setLookup('');
    });
  };

  const reserve = (event: FormEvent) => {
    event.preventDefault();
    guard(async () => {
      const created = await api<{ id: string }>(
        'POST',
        '/v1/reservations',
        { lines: [{ sku: sku.trim(), qty: Number(qty) }], ttl_ms: Math.round(Number(minutes) * 60000) },
        { 'Idempotency-Key': crypto.randomUUID() },
      );
      add(created.id);
    });
  };

  const act = (id: string, action: string) =>
    guard(async () => {
      await api('POST', `/v1/reservations/${encodeURIComponent(id)}/${action}`, {});
      await read(id);
    });

  return (
    <section>
      <div className="forms">
        <form className="card inline" onSubmit={find}>
          <label>
            {t('reservationId')}
            <input value={lookup} onChange={(e) => setLookup(e.target.value)} data-testid="reservation-lookup" required />
          </label>
          <button type="submit" data-testid="reservation-find">
            {t('lookUp')}
          </button>
        </form>
        <form className="card inline" onSubmit={reserve}>
          <strong>{t('newReservation')}</strong>
          <label>
            {t('sku')}
            <input value={sku} onChange={(e) => setSku(e.target.value)} required />
          </label>
          <label>
            {t('qty')}
            <input value={qty} onChange={(e) => setQty(e.target.value)} inputMode="numeric" required />
          </label>
          <label>
            {t('ttlMinutes')}
            <input value={minutes} onChange={(e) => setMinutes(e.target.value)} inputMode="numeric" required />
          </label>
          <button type="submit">{t('reserve')}</button>
        </form>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <h3>{t('recent')}</h3>
      <table data-testid="reservation-table">
        <thead>
          <tr>
            <th>{t('reservationId')}</th>
            <th>{t('status')}</th>
            <th>{t('allocations')}</th>
            <th>{t('expiresAt')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {ids.map((id) => (
            <ReservationRow key={id} id={id} view={views[id]} onAct={act} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

function ReservationRow({ id, view, onAct }: { id: string; view?: ReservationBody; onAct: (id: string, action: string) => void }) {
  const { t, name, zone, language } = useLocale();
  return (
    <tr data-reservation={id}>
      <td className="code">{id}</td>
      <td data-field="status">{view ? name('status', view.status) : '…'}</td>
      <td>{view?.allocations.map((a) => `${a.sku} @ ${a.warehouse} x${a.qty}`).join(', ')}</td>
      <td>{view ? dateTime(view.expires_at_ms, zone, language) : ''}</td>
      <td>
        <div className="actions">
          <button type="button" onClick={() => onAct(id, 'confirm')}>
            {t('confirm')}
          </button>
          <button type="button" onClick={() => onAct(id, 'release')}>
            {t('release')}
          </button>
          <button type="button" onClick={() => onAct(id, 'ship')}>
            {t('ship')}
          </button>
        </div>
      </td>
    </tr>
  );
}
