// The console's texts in Chinese (the default) and English. Codes (SKU, warehouse, channel order
// ids) and the API's own error sentences are shown as they come.
import { createContext, useContext } from 'react';

export type Language = 'zh-CN' | 'en';

const zh = {
  title: 'omsd 运营控制台',
  signIn: '登录',
  signOut: '退出',
  apiKey: 'API 密钥（角色 ops）',
  signInHint: '用 omsd 配置的 ops 角色 API 密钥登录。',
  signingIn: '正在登录…',
  openMode: '未配置密钥：仅限本机访问，无需登录',
  language: 'English',
  dashboard: '看板',
  stock: '库存',
  orders: '订单',
  reservations: '预占',
  refresh: '刷新',
  updatedAt: '更新于',
  ordersToday: '今日订单',
  gmvToday: '今日成交额',
  onHold: '挂起订单',
  parked: '缺货等待',
  soldOut: '售罄 SKU',
  ordersByHour: '今日各小时订单',
  ordersByChannel: '各渠道订单',
  ordersByStatus: '各状态订单',
  availableBySku: '各 SKU 可售库存',
  sampleNote: '按最早的 {n} 个订单统计（订单列表一次最多 1000 条）',
  sku: 'SKU',
  warehouse: '仓库',
  onHand: '在库',
  reserved: '已预占',
  pooled: '秒杀池',
  safety: '安全库存',
  damaged: '残次',
  qualityControl: '质检',
  available: '可售',
  incoming: '在途',
  kit: '组合',
  kitOf: '组合：{parts}',
  adjust: '调整库存',
  delta: '增减数量',
  apply: '提交',
  adjusted: '已调整 {sku} @ {warehouse}：{delta}',
  reasonMissing: '注：引擎的调整命令目前不记录原因。',
  filterStatus: '状态',
  all: '全部',
  order: '订单号',
  channel: '渠道',
  externalId: '渠道单号',
  status: '状态',
  buyer: '买家',
  paid: '实付',
  holds: '挂起原因',
  createdAt: '创建时间',
  detail: '详情',
  approve: '审核通过',
  reject: '驳回',
  cancel: '取消',
  allocate: '分配库存',
  reason: '原因',
  lines: '商品行',
  qty: '数量',
  listAmount: '标价金额',
  allocatedAmount: '分摊金额',
  shipments: '包裹',
  address: '收货地址',
  noOrders: '暂无订单',
  close: '关闭',
  reservationId: '预占单号',
  lookUp: '查询',
  confirm: '确认付款',
  release: '释放',
  ship: '发货',
  expiresAt: '过期时间',
  customer: '客户号',
  allocations: '分配',
  newReservation: '新建预占',
  reserve: '预占',
  ttlMinutes: '有效期（分钟）',
  done: '完成',
  error: '出错',
  recent: '本次会话的预占',
  loading: '加载中…',
  // statuses
  'status.created': '已创建',
  'status.on_hold': '挂起',
  'status.approved': '已审核',
  'status.allocated': '已分配',
  'status.picking': '拣货中',
  'status.packed': '已打包',
  'status.shipped': '已发货',
  'status.delivered': '已签收',
  'status.completed': '已完成',
  'status.cancelled': '已取消',
  'status.held': '已预占',
  'status.confirmed': '已确认',
  'status.released': '已释放',
  'status.expired': '已过期',
  'status.deposit_held': '定金已付',
  'status.balance_paid': '尾款已付',
  'status.balance_missed': '尾款未付',
  'status.partial': '部分',
  'channel.taobao': '淘宝',
  'channel.jd': '京东',
  'channel.douyin': '抖音',
  'channel.native': '自营',
  'channel.own': '自营',
};

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  title: 'omsd operations console',
  signIn: 'Sign in',
  signOut: 'Sign out',
  apiKey: 'API key (role ops)',
  signInHint: 'Sign in with an API key of role ops configured in omsd.',
  signingIn: 'Signing in…',
  openMode: 'No keys configured: this machine only, no sign-in',
  language: '中文',
  dashboard: 'Dashboard',
  stock: 'Stock',
  orders: 'Orders',
  reservations: 'Reservations',
  refresh: 'Refresh',
  updatedAt: 'Updated',
  ordersToday: 'Orders today',
  gmvToday: 'GMV today',
  onHold: 'On hold',
  parked: 'Waiting for stock',
  soldOut: 'Sold-out SKUs',
  ordersByHour: 'Orders by hour today',
  ordersByChannel: 'Orders by channel',
  ordersByStatus: 'Orders by status',
  availableBySku: 'Available by SKU',
  sampleNote: 'From the oldest {n} orders (the order list answers at most 1,000)',
  sku: 'SKU',
  warehouse: 'Warehouse',
  onHand: 'On hand',
  reserved: 'Reserved',
  pooled: 'Pooled',
  safety: 'Safety',
  damaged: 'Damaged',
  qualityControl: 'QC',
  available: 'Available',
  incoming: 'Incoming',
  kit: 'Kit',
  kitOf: 'Kit: {parts}',
  adjust: 'Adjust stock',
  delta: 'Change (+/-)',
  apply: 'Apply',
  adjusted: 'Adjusted {sku} @ {warehouse}: {delta}',
  reasonMissing: 'Note: the engine’s adjust command does not record a reason yet.',
  filterStatus: 'Status',
  all: 'All',
  order: 'Order',
  channel: 'Channel',
  externalId: 'Channel order',
  status: 'Status',
  buyer: 'Buyer',
  paid: 'Paid',
  holds: 'Holds',
  createdAt: 'Created',
  detail: 'Detail',
  approve: 'Approve',
  reject: 'Reject',
  cancel: 'Cancel',
  allocate: 'Allocate',
  reason: 'Reason',
  lines: 'Lines',
  qty: 'Qty',
  listAmount: 'List amount',
  allocatedAmount: 'Allocated amount',
  shipments: 'Shipments',
  address: 'Address',
  noOrders: 'No orders',
  close: 'Close',
  reservationId: 'Reservation id',
  lookUp: 'Look up',
  confirm: 'Confirm payment',
  release: 'Release',
  ship: 'Ship',
  expiresAt: 'Expires',
  customer: 'Customer',
  allocations: 'Allocations',
  newReservation: 'New reservation',
  reserve: 'Reserve',
  ttlMinutes: 'Hold for (minutes)',
  done: 'Done',
  error: 'Error',
  recent: 'Reservations this session',
  loading: 'Loading…',
  'status.created': 'created',
  'status.on_hold': 'on hold',
  'status.approved': 'approved',
  'status.allocated': 'allocated',
  'status.picking': 'picking',
  'status.packed': 'packed',
  'status.shipped': 'shipped',
  'status.delivered': 'delivered',
  'status.completed': 'completed',
  'status.cancelled': 'cancelled',
  'status.held': 'held',
  'status.confirmed': 'confirmed',
  'status.released': 'released',
  'status.expired': 'expired',
  'status.deposit_held': 'deposit held',
  'status.balance_paid': 'balance paid',
  'status.balance_missed': 'balance missed',
  'status.partial': 'partial',
  'channel.taobao': 'Taobao',
  'channel.jd': 'JD',
  'channel.douyin': 'Douyin',
  'channel.native': 'Own shop',
  'channel.own': 'Own shop',
};

const texts: Record<Language, Record<Key, string>> = { 'zh-CN': zh, en };

export interface Locale {
  language: Language;
  zone: string;
  t: (key: Key, values?: Record<string, string | number>) => string;
  /** A status or channel name through the dictionary, the raw name when it has no entry. */
  name: (prefix: 'status' | 'channel', value: string) => string;
}

export function locale(language: Language, zone: string): Locale {
  const table = texts[language];
  const t = (key: Key, values?: Record<string, string | number>) => {
    let text = table[key] ?? key;
    for (const [name, value] of Object.entries(values ?? {})) text = text.replace(`{${name}}`, String(value));
    return text;
  };
  const name = (prefix: 'status' | 'channel', value: string) => {
    const key = `${prefix}.${value}` as Key;
    return key in table ? table[key] : value;
  };
  return { language, zone, t, name };
}

export const LocaleContext = createContext<Locale>(locale('zh-CN', 'Asia/Shanghai'));

export function useLocale(): Locale {
  return useContext(LocaleContext);
}

export function savedLanguage(): Language {
  try {
    return localStorage.getItem('omsd-console-language') === 'en' ? 'en' : 'zh-CN';
  } catch {
    return 'zh-CN';
  }
}

export function saveLanguage(language: Language) {
  try {
    localStorage.setItem('omsd-console-language', language);
  } catch {
    // Storage may be off (private windows); the choice then lasts for this page only.
  }
}
