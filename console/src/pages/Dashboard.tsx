// The live dashboard: what the order list and the stock export can answer today, refreshed every
// five seconds. Times are bucketed in the shop's time zone.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, ExportRow, OrderSummary } from '../api';
import { Chart, ChartOption } from '../Chart';
import { dateTime, dayOf, hourOf, yuan } from '../format';
import { useLocale } from '../i18n';

const REFRESH_MS = 5000;
const LIST_LIMIT = 1000;

export function Dashboard() {
  const { t, name, zone, language } = useLocale();
  const [orders, setOrders] = useState<OrderSummary[]>([]);
  const [stock, setStock] = useState<ExportRow[]>([]);
  const [updated, setUpdated] = useState<number | null>(null);
  const [error, setError] = useState('');

  const load = useCallback(async () => {
    try {
      const [list, rows] = await Promise.all([
        api<OrderSummary[]>('GET', `/v1/orders?limit=${LIST_LIMIT}`),
        api<ExportRow[]>('GET', '/v1/stock'),
      ]);
      setOrders(list);
      setStock(rows);
      setUpdated(Date.now());
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);

  useEffect(() => {
    load();
    const timer = window.setInterval(load, REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const figures = useMemo(() => {
    const today = dayOf(Date.now(), zone);
    const todays = orders.filter((o) => dayOf(o.created_at_ms, zone) === today);
    const byHour = new Array(24).fill(0);
    for (const o of todays) byHour[hourOf(o.created_at_ms, zone)] += 1;
    const count = (key: (o: OrderSummary) => string) => {
      const counts = new Map<string, number>();
      for (const o of orders) counts.set(key(o), (counts.get(key(o)) ?? 0) + 1);
      return [...counts.entries()].sort((a, b) => b[1] - a[1]);
    };
    return {
      today: todays.length,
      gmv: todays.filter((o) => o.status !== 'cancelled').reduce((sum, o) => sum + o.paid_cents, 0),
      onHold: orders.filter((o) => o.status === 'on_hold').length,
      byHour,
      byChannel: count((o) => o.channel),
      byStatus: count((o) => o.status),
      soldOut: stock.filter((r) => r.available === 0).length,
    };
  }, [orders, stock, zone]);

  const hourChart: ChartOption = useMemo(
    () => ({
      tooltip: { trigger: 'axis' },
      grid: { left: 40, right: 16, top: 16, bottom: 28 },
      xAxis: { type: 'category', data: figures.byHour.map((_, h) => String(h).padStart(2, '0')) },
      yAxis: { type: 'value', minInterval: 1 },
      series: [{ type: 'bar', name: t('ordersToday'), data: figures.byHour, itemStyle: { color: '#1f6feb' } }],
    }),
    [figures, t],
  );
  const channelChart: ChartOption = useMemo(
    () => ({
      tooltip: { trigger: 'item' },
      legend: { bottom: 0 },
      series: [
        {
          type: 'pie',
          radius: ['35%', '65%'],
          data: figures.byChannel.map(([channel, value]) => ({ name: name('channel', channel), value })),
        },
      ],
    }),
    [figures, name],
  );
  const statusChart: ChartOption = useMemo(
    () => ({
      tooltip: { trigger: 'axis' },
      grid: { left: 80, right: 16, top: 16, bottom: 28 },
      xAxis: { type: 'value', minInterval: 1 },
      yAxis: { type: 'category', data: figures.byStatus.map(([status]) => name('status', status)) },
      series: [{ type: 'bar', data: figures.byStatus.map(([, value]) => value), itemStyle: { color: '#2da44e' } }],
    }),
    [figures, name],
  );
  const stockChart: ChartOption = useMemo(
    () => ({
      tooltip: { trigger: 'axis' },
      grid: { left: 48, right: 16, top: 16, bottom: 72 },
      xAxis: { type: 'category', data: stock.map((r) => r.code), axisLabel: { rotate: 40 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          type: 'bar',
          data: stock.map((r) => ({ value: r.available, itemStyle: { color: r.available === 0 ? '#cf222e' : '#8250df' } })),
        },
      ],
    }),
    [stock],
  );

  return (
    <section>
      <div className="toolbar">
        <button type="button" onClick={load}>
          {t('refresh')}
        </button>
        {updated !== null && (
          <span className="muted" data-testid="updated">
            {t('updatedAt')} {dateTime(updated, zone, language)}
          </span>
        )}
        {error && <span className="error">{error}</span>}
      </div>
      <div className="tiles">
        <Tile label={t('ordersToday')} value={String(figures.today)} testId="kpi-orders-today" />
        <Tile label={t('gmvToday')} value={yuan(figures.gmv)} testId="kpi-gmv" />
        <Tile label={t('onHold')} value={String(figures.onHold)} testId="kpi-on-hold" />
        <Tile label={t('soldOut')} value={String(figures.soldOut)} testId="kpi-sold-out" />
      </div>
      {orders.length >= LIST_LIMIT && <p className="muted">{t('sampleNote', { n: LIST_LIMIT })}</p>}
      <div className="charts">
        <Chart option={hourChart} label={t('ordersByHour')} testId="chart-hour" />
        <Chart option={channelChart} label={t('ordersByChannel')} testId="chart-channel" />
        <Chart option={statusChart} label={t('ordersByStatus')} testId="chart-status" />
        <Chart option={stockChart} label={t('availableBySku')} testId="chart-stock" />
      </div>
    </section>
  );
}

function Tile({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div className="tile">
      <div className="muted">{label}</div>
      <div className="figure" data-testid={testId}>
        {value}
      </div>
    </div>
  );
}
