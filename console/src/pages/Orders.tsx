// The order desk as far as the HTTP API goes today: list (with a status filter), detail (lines
// with allocated amounts, shipments, address) and approve / reject / cancel / allocate.
import { useCallback, useEffect, useState } from 'react';
import { api, inParallel, OrderSummary, StockBody } from '../api';
import { dateTime, yuan } from '../format';
import { useLocale } from '../i18n';

const STATUSES = ['on_hold', 'approved', 'allocated', 'picking', 'packed', 'shipped', 'delivered', 'completed', 'cancelled'];

interface OrderLine {
  sku: number;
  sku_code: string;
  qty: number;
  list_cents: number;
  allocated_cents: number;
  allocated_qty: number;
}

interface Shipment {
  id: number;
  warehouse: number;
  status: string;
  carrier: string | null;
  waybill: string | null;
  items: { sku: number; warehouse: number; qty: number }[];
}

interface Order {
  id: number;
  channel: string;
  external_id: string;
  buyer: string;
  status: string;
  holds: string[];
  paid_cents: number;
  shipping_cents: number;
  created_at_ms: number;
  remark: string;
  cancel_reason: string | null;
  address: { name: string; phone: string; province: string; city: string; district: string; detail: string; zip: string };
  lines: OrderLine[];
  shipments: Shipment[];
}

export function Orders() {
  const { t, name, zone, language } = useLocale();
  const [status, setStatus] = useState('');
  const [orders, setOrders] = useState<OrderSummary[]>([]);
  const [error, setError] = useState('');
  const [selected, setSelected] = useState<number | null>(null);

  const load = useCallback(async () => {
    try {
      const query = status ? `?status=${encodeURIComponent(status)}` : '';
      const list = await api<OrderSummary[]>('GET', `/v1/orders${query}`);
      // The API answers oldest first; the desk wants the newest on top.
      setOrders([...list].reverse());
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, [status]);

  useEffect(() => {
    load();
  }, [load]);

  return (
    <section className="split">
      <div>
        <div className="toolbar">
          <label>
            {t('filterStatus')}{' '}
            <select value={status} onChange={(e) => setStatus(e.target.value)} data-testid="order-status-filter">
              <option value="">{t('all')}</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {name('status', s)}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={load}>
            {t('refresh')}
          </button>
          {error && <span className="error">{error}</span>}
        </div>
        <table data-testid="order-table">
          <thead>
            <tr>
              <th>{t('externalId')}</th>
              <th>{t('channel')}</th>
              <th>{t('status')}</th>
              <th>{t('buyer')}</th>
              <th className="num">{t('paid')}</th>
              <th>{t('holds')}</th>
              <th>{t('createdAt')}</th>
            </tr>
          </thead>
          <tbody>
            {orders.length === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  {t('noOrders')}
                </td>
              </tr>
            )}
            {orders.map((o) => (
              <tr
                key={o.id}
                className={o.id === selected ? 'selected clickable' : 'clickable'}
                onClick={() => setSelected(o.id)}
                data-order={o.external_id}
              >
                <td className="code">{o.external_id}</td>
                <td>{name('channel', o.channel)}</td>
                <td data-field="status">{name('status', o.status)}</td>
                <td>{o.buyer}</td>
                <td className="num">{yuan(o.paid_cents)}</td>
                <td>{o.holds.join(', ')}</td>
                <td>{dateTime(o.created_at_ms, zone, language)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {selected !== null && <OrderDetail id={selected} onChanged={load} onClose={() => setSelected(null)} />}
    </section>
  );
}

function OrderDetail({ id, onChanged, onClose }: { id: number; onChanged: () => void; onClose: () => void }) {
  const { t, name, zone, language } = useLocale();
  const [order, setOrder] = useState<Order | null>(null);
  const [warehouses, setWarehouses] = useState<Map<number, string>>(new Map());
  const [reason, setReason] = useState('');
  const [error, setError] = useState('');

  const load = useCallback(async () => {
    try {
      const o = await api<Order>('GET', `/v1/orders/${id}`);
      setOrder(o);
      // Shipments name warehouses by id; the SKUs' stock views give their codes.
      const views = await inParallel([...new Set(o.lines.map((l) => l.sku_code))], 4, (code) =>
        api<StockBody>('GET', `/v1/stock/${encodeURIComponent(code)}`).catch(() => null),
      );
      const codes = new Map<number, string>();
      for (const v of views) for (const w of v?.warehouses ?? []) codes.set(w.warehouse_id, w.warehouse);
      setWarehouses(codes);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, [id]);

  useEffect(() => {
    load();
  }, [load]);

  const act = async (action: string, body?: unknown) => {
    try {
      await api('POST', `/v1/orders/${id}/${action}`, body ?? {});
      setReason('');
      await load();
      onChanged();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (!order) return <aside className="card">{error || t('loading')}</aside>;
  const skuCode = (sku: number) => order.lines.find((l) => l.sku === sku)?.sku_code ?? `#${sku}`;
  const warehouseCode = (warehouse: number) => warehouses.get(warehouse) ?? `#${warehouse}`;
  const a = order.address;

  return (
    <aside className="card detail" data-testid="order-detail">
      <div className="toolbar">
        <h2 className="code">{order.external_id}</h2>
        <span className="badge" data-testid="order-detail-status">
          {name('status', order.status)}
        </span>
        <button type="button" onClick={onClose}>
          {t('close')}
        </button>
      </div>
      <p className="muted">
        {name('channel', order.channel)} · {t('order')} {order.id} · {dateTime(order.created_at_ms, zone, language)}
      </p>
      {order.holds.length > 0 && (
        <p>
          {t('holds')}: {order.holds.join(', ')}
        </p>
      )}
      <div className="toolbar">
        <button type="button" onClick={() => act('approve')} data-testid="order-approve">
          {t('approve')}
        </button>
        <button type="button" onClick={() => act('allocate')}>
          {t('allocate')}
        </button>
        <input placeholder={t('reason')} value={reason} onChange={(e) => setReason(e.target.value)} data-testid="order-reason" />
        <button type="button" onClick={() => act('reject', { reason })}>
          {t('reject')}
        </button>
        <button type="button" className="danger" onClick={() => act('cancel', { reason })}>
          {t('cancel')}
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <h3>{t('lines')}</h3>
      <table>
        <thead>
          <tr>
            <th>{t('sku')}</th>
            <th className="num">{t('qty')}</th>
            <th className="num">{t('listAmount')}</th>
            <th className="num">{t('allocatedAmount')}</th>
          </tr>
        </thead>
        <tbody>
          {order.lines.map((l) => (
            <tr key={l.sku}>
              <td className="code">{l.sku_code}</td>
              <td className="num">{l.qty}</td>
              <td className="num">{yuan(l.list_cents)}</td>
              <td className="num">{yuan(l.allocated_cents)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        {t('paid')}: <strong>{yuan(order.paid_cents)}</strong>
      </p>
      <h3>{t('shipments')}</h3>
      <ul>
        {order.shipments.map((s) => (
          <li key={s.id}>
            <span className="code">{s.id}</span> · {warehouseCode(s.warehouse)} · {s.status}
            {s.carrier ? ` · ${s.carrier}` : ''}
            {s.waybill ? ` · ${s.waybill}` : ''} ·{' '}
            {s.items.map((i) => `${skuCode(i.sku)} x${i.qty}`).join(', ')}
          </li>
        ))}
      </ul>
      <h3>{t('address')}</h3>
      <p data-testid="order-address">
        {a.name} {a.phone}
        <br />
        {a.province} {a.city} {a.district} {a.detail} {a.zip}
      </p>
    </aside>
  );
}
