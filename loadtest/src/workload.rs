//! Scenarios and the deterministic request stream. Everything here is target-agnostic: SKUs are
//! indexes into the run's catalog and campaigns are indexes into its campaign list; each target
//! driver maps them to its own keys or ids.

use std::sync::Arc;

use serde::Serialize;

use crate::rng::{stream_seed, SplitMix64, Zipf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Few hot SKUs, each with a flash-sale pool; a million buyers; per-customer limit; most requests after sell-out.
    FlashSale,
    /// Catalog of --skus SKUs (uniform or Zipf --skew), 1..=--max-lines lines, then confirm / release.
    Checkout,
    /// Presale deposits, balance payments after a delay, some missed balance windows.
    Presale,
    /// --storm reservations with the same short TTL expiring within one second while checkout traffic runs.
    ExpiryStorm,
    /// All at once, plus stock receipts and stock queries.
    Mixed,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FlashSale => "flash-sale",
            Scenario::Checkout => "checkout",
            Scenario::Presale => "presale",
            Scenario::ExpiryStorm => "expiry-storm",
            Scenario::Mixed => "mixed",
        }
    }
}

/// What the driver does after a reservation is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Leave it held (it expires, or a presale balance window is missed).
    Keep,
    Confirm,
    Release,
    /// Pay a presale balance this long after the deposit was acknowledged.
    PayBalance {
        after_ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveOp {
    /// (catalog index, qty), distinct SKUs.
    pub lines: Vec<(u32, u32)>,
    pub customer: u64,
    /// Campaign index into [`Plan::campaigns`].
    pub campaign: Option<u32>,
    pub ttl_ms: u64,
    /// Expiry storm: expire at this wall-clock instant (ms since the epoch) instead of after `ttl_ms`.
    pub expire_at_ms: Option<u64>,
    pub then: Then,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Reserve(ReserveOp),
    GetStock { sku: u32 },
    Receive { sku: u32, qty: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    FlashSale,
    Presale,
}

#[derive(Clone, Debug, Serialize)]
pub struct CampaignSpec {
    pub kind: CampaignKind,
    /// Catalog index of its SKU.
    pub sku: u32,
    /// Flash-sale pool or presale quota.
    pub units: u32,
    pub per_customer_limit: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuRole {
    Catalog,
    Flash,
    Presale,
}

/// Tunables of the request stream (from the command line).
#[derive(Clone, Debug)]
pub struct PlanParams {
    pub scenario: Scenario,
    pub seed: u64,
    pub skus: u32,
    pub skew: f64,
    pub stock: u64,
    pub hot_skus: u32,
    pub pool: u32,
    pub buyers: u64,
    pub per_customer_limit: u32,
    pub max_lines: u32,
    pub max_qty: u32,
    pub confirm_ratio: f64,
    pub ttl_ms: u64,
    pub presale_skus: u32,
    pub balance_window_ms: u64,
    pub pay_after_ms: u64,
    /// Ship confirmed reservations this long after the confirm (`None`: never).
    pub ship_after_ms: Option<u64>,
    pub storm: u64,
}

impl PlanParams {
    pub fn new(scenario: Scenario, seed: u64) -> PlanParams {
        PlanParams {
            scenario,
            seed,
            skus: 100_000,
            skew: 0.0,
            stock: 100_000,
            hot_skus: 4,
            pool: 10_000,
            buyers: 1_000_000,
            per_customer_limit: 1,
            max_lines: 5,
            max_qty: 2,
            confirm_ratio: 0.9,
            ttl_ms: 15 * 60 * 1000,
            presale_skus: 2,
            balance_window_ms: 3_000,
            pay_after_ms: 500,
            ship_after_ms: None,
            storm: 1_000_000,
        }
    }
}

/// The run's immutable layout: catalog, campaigns, distributions.
#[derive(Debug)]
pub struct Plan {
    pub p: PlanParams,
    /// Catalog SKU count (indexes `0..catalog`), then flash SKUs, then presale SKUs.
    pub catalog: u32,
    pub flash: u32,
    pub presale: u32,
    pub campaigns: Vec<CampaignSpec>,
    pub zipf: Zipf,
}

impl Plan {
    pub fn new(p: PlanParams) -> Plan {
        let (catalog, flash, presale) = match p.scenario {
            Scenario::FlashSale => (0, p.hot_skus.max(1), 0),
            Scenario::Checkout | Scenario::ExpiryStorm => (p.skus.max(5), 0, 0),
            Scenario::Presale => (0, 0, p.presale_skus.max(1)),
            Scenario::Mixed => (p.skus.max(5), p.hot_skus.max(1), p.presale_skus.max(1)),
        };
        let mut campaigns = Vec::new();
        // The pool is the total over the hot SKUs, split evenly (remainder to the first).
        for i in 0..flash {
            let share = p.pool / flash + if i == 0 { p.pool % flash } else { 0 };
            campaigns.push(CampaignSpec {
                kind: CampaignKind::FlashSale,
                sku: catalog + i,
                units: share.max(1),
                per_customer_limit: p.per_customer_limit.max(1),
            });
        }
        for i in 0..presale {
            let share = p.pool / presale + if i == 0 { p.pool % presale } else { 0 };
            campaigns.push(CampaignSpec {
                kind: CampaignKind::Presale,
                sku: catalog + flash + i,
                units: share.max(1),
                per_customer_limit: p.per_customer_limit.max(1),
            });
        }
        let zipf = Zipf::new(catalog.max(1), p.skew);
        Plan { p, catalog, flash, presale, campaigns, zipf }
    }

    pub fn sku_count(&self) -> u32 {
        self.catalog + self.flash + self.presale
    }

    pub fn role(&self, sku: u32) -> SkuRole {
        if sku < self.catalog {
            SkuRole::Catalog
        } else if sku < self.catalog + self.flash {
            SkuRole::Flash
        } else {
            SkuRole::Presale
        }
    }

    /// The storefront code of a catalog index; stable across runs with the same layout.
    pub fn sku_code(&self, sku: u32) -> String {
        match self.role(sku) {
            SkuRole::Catalog => format!("LT-C{sku:07}"),
            SkuRole::Flash => format!("LT-F{:03}", sku - self.catalog),
            SkuRole::Presale => format!("LT-P{:03}", sku - self.catalog - self.flash),
        }
    }

    /// On-hand stock set at setup.
    pub fn initial_on_hand(&self, sku: u32) -> u64 {
        match self.role(sku) {
            SkuRole::Catalog => self.p.stock,
            SkuRole::Flash => self.campaigns.iter().find(|c| c.sku == sku).map_or(0, |c| u64::from(c.units)),
            SkuRole::Presale => 0,
        }
    }

    /// Campaign indexes of one kind.
    pub fn campaigns_of(&self, kind: CampaignKind) -> Vec<u32> {
        self.campaigns.iter().enumerate().filter(|(_, c)| c.kind == kind).map(|(i, _)| i as u32).collect()
    }
}

/// One connection's request stream: a pure function of (seed, stream number, call count).
#[derive(Clone, Debug)]
pub struct OpGen {
    plan: Arc<Plan>,
    rng: SplitMix64,
    flash: Vec<u32>,
    presale: Vec<u32>,
}

impl OpGen {
    pub fn new(plan: Arc<Plan>, stream: u64) -> OpGen {
        let rng = SplitMix64::new(stream_seed(plan.p.seed, stream));
        let flash = plan.campaigns_of(CampaignKind::FlashSale);
        let presale = plan.campaigns_of(CampaignKind::Presale);
        OpGen { plan, rng, flash, presale }
    }

    pub fn next_op(&mut self) -> Op {
        match self.plan.p.scenario {
            Scenario::FlashSale => self.flash_sale(),
            Scenario::Checkout | Scenario::ExpiryStorm => self.checkout(),
            Scenario::Presale => self.presale(),
            Scenario::Mixed => {
                let r = self.rng.unit();
                if r < 0.55 {
                    self.checkout()
                } else if r < 0.75 {
                    self.flash_sale()
                } else if r < 0.82 {
                    self.presale()
                } else if r < 0.97 {
                    Op::GetStock { sku: self.plan.zipf.sample(&mut self.rng) }
                } else {
                    let sku = self.plan.zipf.sample(&mut self.rng);
                    Op::Receive { sku, qty: 1 + self.rng.below(20) as u32 }
                }
            }
        }
    }

    /// One reservation of the expiry storm: a single unit of a uniformly chosen catalog SKU, kept.
    pub fn storm_op(&mut self, expire_at_ms: u64) -> Op {
        let sku = self.rng.below(u64::from(self.plan.catalog.max(1))) as u32;
        Op::Reserve(ReserveOp {
            lines: vec![(sku, 1)],
            customer: 1 + self.rng.below(self.plan.p.buyers.max(1)),
            campaign: None,
            ttl_ms: 0,
            expire_at_ms: Some(expire_at_ms),
            then: Then::Keep,
        })
    }

    fn confirm_or_release(&mut self) -> Then {
        if self.rng.chance(self.plan.p.confirm_ratio) {
            Then::Confirm
        } else {
            Then::Release
        }
    }

    fn flash_sale(&mut self) -> Op {
        let c = self.flash[self.rng.below(self.flash.len() as u64) as usize];
        let sku = self.plan.campaigns[c as usize].sku;
        let customer = 1 + self.rng.below(self.plan.p.buyers.max(1));
        let then = self.confirm_or_release();
        Op::Reserve(ReserveOp {
            lines: vec![(sku, 1)],
            customer,
            campaign: Some(c),
            ttl_ms: self.plan.p.ttl_ms,
            expire_at_ms: None,
            then,
        })
    }

    fn checkout(&mut self) -> Op {
        let n = 1 + self.rng.below(u64::from(self.plan.p.max_lines.clamp(1, 64))) as usize;
        let n = n.min(self.plan.catalog as usize);
        let mut lines: Vec<(u32, u32)> = Vec::with_capacity(n);
        while lines.len() < n {
            let sku = self.plan.zipf.sample(&mut self.rng);
            if lines.iter().any(|(s, _)| *s == sku) {
                continue;
            }
            let qty = 1 + self.rng.below(u64::from(self.plan.p.max_qty.max(1))) as u32;
            lines.push((sku, qty));
        }
        let customer = 1 + self.rng.below(self.plan.p.buyers.max(1));
        let then = self.confirm_or_release();
        Op::Reserve(ReserveOp { lines, customer, campaign: None, ttl_ms: self.plan.p.ttl_ms, expire_at_ms: None, then })
    }

    fn presale(&mut self) -> Op {
        let c = self.presale[self.rng.below(self.presale.len() as u64) as usize];
        let sku = self.plan.campaigns[c as usize].sku;
        let customer = 1 + self.rng.below(self.plan.p.buyers.max(1));
        let then = if self.rng.chance(self.plan.p.confirm_ratio) {
            Then::PayBalance { after_ms: self.plan.p.pay_after_ms }
        } else {
            Then::Keep
        };
        Op::Reserve(ReserveOp {
            lines: vec![(sku, 1)],
            customer,
            campaign: Some(c),
            ttl_ms: self.plan.p.ttl_ms,
            expire_at_ms: None,
            then,
        })
    }
}
