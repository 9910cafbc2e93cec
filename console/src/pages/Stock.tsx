// Stock per SKU x warehouse (quantity states, by code), and the adjust operation of
// POST /v1/stock/{sku}/adjustments. The export lists every SKU; details are read for the SKUs
// shown (at most DETAIL_LIMIT, narrowed by the filter).
import { FormEvent, useCallback, useEffect, useMemo, useState } from 'react';
import { api, ExportRow, inParallel, StockBody } from '../api';
import { useLocale } from '../i18n';

const DETAIL_LIMIT = 200;

export function Stock() {
  const { t } = useLocale();
  const [rows, setRows] = useState<StockBody[]>([]);
  const [total, setTotal] = useState(0);
  const [filter, setFilter] = useState('');
  const [error, setError] = useState('');
  const [message, setMessage] = useState('');
  const [sku, setSku] = useState('');
  const [warehouse, setWarehouse] = useState('');
  const [delta, setDelta] = useState('');

  const load = useCallback(async () => {
    try {
      const all = await api<ExportRow[]>('GET', '/v1/stock');
      const wanted = all.filter((r) => r.code.toUpperCase().includes(filter.trim().toUpperCase()));
      setTotal(wanted.length);
      const details = await inParallel(wanted.slice(0, DETAIL_LIMIT), 6, (r) =>
        api<StockBody>('GET', `/v1/stock/${encodeURIComponent(r.code)}`),
      );
      setRows(details);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, [filter]);

  useEffect(() => {
    load();
  }, [load]);

  const warehouses = useMemo(() => {
    const codes = new Set<string>();
    for (const r of rows) for (const w of r.warehouses) codes.add(w.warehouse);
    return [...codes].sort();
  }, [rows]);
  const stocked = rows.filter((r) => r.kit.length === 0);

  const adjust = async (event: FormEvent) => {
    event.preventDefault();
    setMessage('');
    setError('');
    const change = Number(delta);
    if (!Number.isInteger(change) || change === 0) {
      setError(t('delta'));
      return;
    }
    try {
      await api('POST', `/v1/stock/${encodeURIComponent(sku)}/adjustments`, { warehouse, delta: change });
      setMessage(t('adjusted', { sku, warehouse, delta: change > 0 ? `+${change}` : String(change) }));
      setDelta('');
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <section>
      <form className="card inline" onSubmit={adjust} data-testid="adjust-form">
        <strong>{t('adjust')}</strong>
        <label>
          {t('sku')}
          <select value={sku} onChange={(e) => setSku(e.target.value)} data-testid="adjust-sku" required>
            <option value="" />
            {stocked.map((r) => (
              <option key={r.sku} value={r.sku}>
                {r.sku}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('warehouse')}
          <select value={warehouse} onChange={(e) => setWarehouse(e.target.value)} data-testid="adjust-warehouse" required>
            <option value="" />
            {warehouses.map((code) => (
              <option key={code} value={code}>
                {code}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('delta')}
          <input value={delta} onChange={(e) => setDelta(e.target.value)} inputMode="numeric" data-testid="adjust-delta" required />
        </label>
        <button type="submit" data-testid="adjust-apply">
          {t('apply')}
        </button>
        <span className="muted small">{t('reasonMissing')}</span>
      </form>
      {message && (
        <p className="ok" role="status" data-testid="adjust-message">
          {message}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="toolbar">
        <input placeholder={t('sku')} value={filter} onChange={(e) => setFilter(e.target.value)} data-testid="stock-filter" />
        <button type="button" onClick={load}>
          {t('refresh')}
        </button>
        <span className="muted">
          {Math.min(total, DETAIL_LIMIT)} / {total}
        </span>
      </div>
      <table data-testid="stock-table">
        <thead>
          <tr>
            <th>{t('sku')}</th>
            <th>{t('warehouse')}</th>
            <th className="num">{t('onHand')}</th>
            <th className="num">{t('reserved')}</th>
            <th className="num">{t('pooled')}</th>
            <th className="num">{t('safety')}</th>
            <th className="num">{t('damaged')}</th>
            <th className="num">{t('qualityControl')}</th>
            <th className="num">{t('available')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.flatMap((r) =>
            r.kit.length > 0
              ? [
                  <tr key={r.sku} data-sku={r.sku}>
                    <td className="code">{r.sku}</td>
                    <td className="muted" colSpan={7}>
                      {t('kitOf', { parts: r.kit.map((c) => `${c.sku} x${c.qty}`).join(', ') })}
                    </td>
                    <td className="num">{r.available}</td>
                  </tr>,
                ]
              : r.warehouses.map((w) => (
                  <tr key={`${r.sku}@${w.warehouse}`} data-sku={r.sku} data-warehouse={w.warehouse}>
                    <td className="code">{r.sku}</td>
                    <td className="code">{w.warehouse}</td>
                    <td className="num" data-field="on_hand">{w.on_hand}</td>
                    <td className="num" data-field="reserved">{w.reserved}</td>
                    <td className="num">{w.pooled}</td>
                    <td className="num">{w.safety}</td>
                    <td className="num">{w.damaged}</td>
                    <td className="num">{w.quality_control}</td>
                    <td className="num" data-field="available">{w.available}</td>
                  </tr>
                )),
          )}
        </tbody>
      </table>
    </section>
  );
}
