//! Rules that operators change without code: audit (hold risky orders), routing (how to allocate,
//! what to do when stock is short, merging), carriers (who ships, waybill ranges, tracking alerts).
//!
//! They are written in a TOML file (see docs/ORDERS.md), parsed here as a pure function of the
//! text, and carried into the engine by `SetAuditRules` / `SetRoutingRules` / `SetCarrierRules`
//! commands: a reload is in the log, so replay decides exactly as the live engine did.

use serde::{Deserialize, Serialize};

use super::model::{NewOrder, SalesChannel};
use super::OrderCommand;

/// Rules with more entries than this are refused (each order is checked against all of them).
pub const RULES_LIMIT: usize = 256;
/// Values (blacklist entries, keywords, regions, SKUs) per rule.
pub const VALUES_LIMIT: usize = 4_096;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Paid amount (shipping included) above `cents`.
    AmountAbove,
    /// Buyer id equal to one of `values`.
    BuyerBlacklist,
    /// Normalized address containing one of `values` (normalized the same way).
    AddressBlacklist,
    /// Remark containing one of `values` (case-insensitive).
    RemarkKeywords,
    /// Province or city equal to one of `values`.
    RiskyRegion,
    /// More than `max_orders` orders from one buyer within `window_ms` (this one included).
    BuyerVelocity,
    /// Name, phone, province, city or street address missing.
    AddressIncomplete,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRule {
    pub name: String,
    pub kind: AuditKind,
    #[serde(default)]
    pub cents: i64,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub max_orders: u32,
    #[serde(default)]
    pub window_ms: u64,
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct AuditRules {
    #[serde(default, rename = "rule")]
    pub rules: Vec<AuditRule>,
}

impl AuditRules {
    /// The longest velocity window (0 when no velocity rule): how long buyer history is kept.
    pub fn velocity_window_ms(&self) -> u64 {
        self.rules.iter().filter(|r| r.kind == AuditKind::BuyerVelocity).map(|r| r.window_ms).max().unwrap_or(0)
    }

    /// Names of the rules `order` trips, in rule order. `recent(window_ms)` answers how many
    /// earlier orders of the same buyer fall within the window.
    pub fn check(&self, order: &NewOrder, recent: impl Fn(u64) -> u32) -> Vec<String> {
        let mut tripped = Vec::new();
        // Normalized forms are computed only when a rule needs them (this runs on every import).
        let address = std::cell::OnceCell::new();
        let address = || address.get_or_init(|| order.address.normalized()).as_str();
        let remark = std::cell::OnceCell::new();
        let remark = || remark.get_or_init(|| order.remark.to_lowercase()).as_str();
        for rule in &self.rules {
            let hit = match rule.kind {
                AuditKind::AmountAbove => order.paid_cents > rule.cents,
                AuditKind::BuyerBlacklist => rule.values.iter().any(|v| v == &order.buyer),
                AuditKind::AddressBlacklist => rule.values.iter().any(|v| {
                    let v: String = v.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
                    !v.is_empty() && address().contains(&v)
                }),
                AuditKind::RemarkKeywords => {
                    rule.values.iter().any(|v| !v.is_empty() && remark().contains(&v.to_lowercase()))
                }
                AuditKind::RiskyRegion => {
                    rule.values.iter().any(|v| v == &order.address.province || v == &order.address.city)
                }
                AuditKind::BuyerVelocity => recent(rule.window_ms) + 1 > rule.max_orders,
                AuditKind::AddressIncomplete => !order.address.is_complete(),
            };
            if hit {
                tripped.push(rule.name.clone());
            }
        }
        tripped
    }

    pub fn validate(&self) -> Result<(), String> {
        check_names(self.rules.iter().map(|r| r.name.as_str()), "audit rule")?;
        for r in &self.rules {
            check_values(&r.values, &r.name)?;
            match r.kind {
                AuditKind::AmountAbove if r.cents <= 0 => {
                    return Err(format!("audit rule {}: cents must be > 0", r.name))
                }
                AuditKind::BuyerVelocity if r.max_orders == 0 || r.window_ms == 0 => {
                    return Err(format!("audit rule {}: max_orders and window_ms must be > 0", r.name))
                }
                AuditKind::BuyerBlacklist
                | AuditKind::AddressBlacklist
                | AuditKind::RemarkKeywords
                | AuditKind::RiskyRegion
                    if r.values.is_empty() =>
                {
                    return Err(format!("audit rule {}: values must not be empty", r.name))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What to do when a rule cannot fill an order.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Unfillable {
    /// Try the next matching rule.
    Next,
    /// Park the order in the unfillable queue; it is retried when stock arrives.
    #[default]
    Park,
    /// Park it, and cancel it if still unfilled after `cancel_after_ms`.
    Cancel,
}

/// How a routing rule orders the warehouses it tries.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WarehouseSort {
    /// One warehouse that can ship everything, in warehouse priority order (fewest shipments);
    /// else split each line over the warehouses with the most stock.
    #[default]
    Priority,
    /// Nearest to the buyer's region first, by the `[[routing.distance]]` table: the nearest
    /// warehouse that can ship everything, else the next nearest; a line that no single warehouse
    /// can fill is split nearest first. Warehouses the table does not reach come last.
    Nearest,
}

/// One entry of the region distance table: from a buyer's province or city to the warehouses of
/// a region (`DefineWarehouse { region }`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionDistance {
    /// Buyer province or city, as in the order address.
    pub buyer_region: String,
    pub warehouse_region: String,
    /// Any unit (km, days, cost); only the order matters.
    pub distance: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub name: String,
    /// Empty: any channel.
    #[serde(default)]
    pub channels: Vec<SalesChannel>,
    /// Buyer provinces or cities; empty: any.
    #[serde(default)]
    pub regions: Vec<String>,
    /// SKU codes; the rule applies when every line is one of them. Empty: any.
    #[serde(default)]
    pub skus: Vec<String>,
    /// Ship what is available now and park the rest.
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub on_unfillable: Unfillable,
    #[serde(default)]
    pub cancel_after_ms: u64,
    #[serde(default)]
    pub sort: WarehouseSort,
}

impl RoutingRule {
    pub fn fallback() -> RoutingRule {
        RoutingRule {
            name: "default".into(),
            channels: Vec::new(),
            regions: Vec::new(),
            skus: Vec::new(),
            partial: false,
            on_unfillable: Unfillable::Park,
            cancel_after_ms: 0,
            sort: WarehouseSort::Priority,
        }
    }

    pub fn matches(&self, channel: SalesChannel, province: &str, city: &str, sku_codes: &[&str]) -> bool {
        (self.channels.is_empty() || self.channels.contains(&channel))
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == province || r == city))
            && (self.skus.is_empty() || sku_codes.iter().all(|c| self.skus.iter().any(|s| s == c)))
    }
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct RoutingRules {
    #[serde(default, rename = "rule")]
    pub rules: Vec<RoutingRule>,
    /// Orders of one buyer, shop and address created within this window merge into one shipment
    /// (0: never merge).
    #[serde(default)]
    pub merge_window_ms: u64,
    /// Region distance table for `sort = "nearest"`.
    #[serde(default, rename = "distance")]
    pub distances: Vec<RegionDistance>,
}

impl RoutingRules {
    /// Matching rules in order, then the fallback (park, no partial).
    pub fn matching(&self, channel: SalesChannel, province: &str, city: &str, sku_codes: &[&str]) -> Vec<RoutingRule> {
        let mut rules: Vec<RoutingRule> =
            self.rules.iter().filter(|r| r.matches(channel, province, city, sku_codes)).cloned().collect();
        if rules.is_empty() {
            rules.push(RoutingRule::fallback());
        }
        rules
    }

    /// The warehouse preference a rule asks for (`ReserveRequest::prefer_warehouses`): `None` for
    /// priority order; for `nearest`, the warehouses the distance table reaches from the buyer's
    /// city (else province), nearest first, ties by warehouse priority then id.
    pub fn preference(
        &self,
        rule: &RoutingRule,
        province: &str,
        city: &str,
        warehouses: &[crate::catalog::Warehouse],
    ) -> Option<Vec<crate::ids::WarehouseId>> {
        if rule.sort != WarehouseSort::Nearest {
            return None;
        }
        let distance = |region: &str, buyer: &str| {
            self.distances
                .iter()
                .filter(|d| d.buyer_region == buyer && d.warehouse_region == region)
                .map(|d| d.distance)
                .min()
        };
        let mut ranked: Vec<(u32, u16, crate::ids::WarehouseId)> = warehouses
            .iter()
            .filter_map(|w| {
                // A city entry is more precise than its province's.
                let d = (!city.is_empty()).then(|| distance(&w.region, city)).flatten();
                let d = d.or_else(|| (!province.is_empty()).then(|| distance(&w.region, province)).flatten())?;
                Some((d, w.priority, w.id))
            })
            .collect();
        ranked.sort_unstable();
        ranked.truncate(crate::command::PREFERRED_WAREHOUSES_LIMIT);
        Some(ranked.into_iter().map(|(_, _, id)| id).collect())
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.distances.len() > VALUES_LIMIT {
            return Err(format!("more than {VALUES_LIMIT} routing distances"));
        }
        if let Some(d) = self.distances.iter().find(|d| d.buyer_region.is_empty() || d.warehouse_region.is_empty()) {
            return Err(format!(
                "routing distance {:?} -> {:?}: both regions must be named",
                d.buyer_region, d.warehouse_region
            ));
        }
        check_names(self.rules.iter().map(|r| r.name.as_str()), "routing rule")?;
        for r in &self.rules {
            check_values(&r.regions, &r.name)?;
            check_values(&r.skus, &r.name)?;
            if r.sort == WarehouseSort::Nearest && self.distances.is_empty() {
                return Err(format!("routing rule {}: sort = \"nearest\" needs [[routing.distance]] entries", r.name));
            }
            if r.on_unfillable == Unfillable::Cancel && r.cancel_after_ms == 0 {
                return Err(format!("routing rule {}: on_unfillable = \"cancel\" needs cancel_after_ms", r.name));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carrier {
    pub code: String,
    /// Waybill numbers are `prefix` + a number from `range_start..=range_end`, issued in order.
    #[serde(default)]
    pub prefix: String,
    pub range_start: u64,
    pub range_end: u64,
    /// Provinces served; empty: everywhere.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Heaviest parcel accepted (0: no limit).
    #[serde(default)]
    pub max_weight_g: u32,
    /// Accepts cash on delivery.
    #[serde(default)]
    pub cod: bool,
    #[serde(default)]
    pub base_cents: i64,
    /// Per started kilogram.
    #[serde(default)]
    pub per_kg_cents: i64,
}

impl Carrier {
    pub fn cost_cents(&self, weight_g: u32) -> i64 {
        self.base_cents + self.per_kg_cents * i64::from(weight_g.div_ceil(1_000))
    }

    fn accepts(&self, province: &str, weight_g: u32, cod: bool) -> bool {
        (self.regions.is_empty() || self.regions.iter().any(|r| r == province))
            && (self.max_weight_g == 0 || weight_g <= self.max_weight_g)
            && (!cod || self.cod)
    }
}

#[derive(
    Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct CarrierRules {
    #[serde(default, rename = "carrier")]
    pub carriers: Vec<Carrier>,
    /// Alert when a shipped parcel has no tracking progress for this long (0: never).
    #[serde(default)]
    pub no_progress_ms: u64,
    /// Alert when a parcel is not delivered this long after it shipped (0: never).
    #[serde(default)]
    pub delivery_sla_ms: u64,
    /// Weight of a SKU without a profile.
    #[serde(default)]
    pub default_weight_g: u32,
}

impl CarrierRules {
    /// The cheapest carrier that serves the province, takes the weight and (if needed) cash on
    /// delivery; ties go to the carrier listed first.
    pub fn choose(&self, province: &str, weight_g: u32, cod: bool) -> Option<&Carrier> {
        self.carriers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.accepts(province, weight_g, cod))
            .min_by_key(|(i, c)| (c.cost_cents(weight_g), *i))
            .map(|(_, c)| c)
    }

    pub fn validate(&self) -> Result<(), String> {
        check_names(self.carriers.iter().map(|c| c.code.as_str()), "carrier")?;
        for c in &self.carriers {
            check_values(&c.regions, &c.code)?;
            if c.range_start > c.range_end {
                return Err(format!("carrier {}: range_start > range_end", c.code));
            }
            // The next number to issue must be representable after the last one.
            if c.range_end == u64::MAX {
                return Err(format!("carrier {}: range_end must be below {}", c.code, u64::MAX));
            }
        }
        Ok(())
    }
}

/// The whole rules file: every section is optional, and only the sections present are reloaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    pub audit: Option<AuditRules>,
    pub routing: Option<RoutingRules>,
    pub carriers: Option<CarrierRules>,
}

impl RulesFile {
    /// Parse and validate the TOML text of a rules file.
    pub fn parse(text: &str) -> Result<RulesFile, String> {
        let file: RulesFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(a) = &file.audit {
            a.validate()?;
        }
        if let Some(r) = &file.routing {
            r.validate()?;
        }
        if let Some(c) = &file.carriers {
            c.validate()?;
        }
        Ok(file)
    }

    /// The commands that load this file into every partition.
    pub fn commands(&self) -> Vec<OrderCommand> {
        let mut commands = Vec::new();
        if let Some(a) = &self.audit {
            commands.push(OrderCommand::SetAuditRules(a.clone()));
        }
        if let Some(r) = &self.routing {
            commands.push(OrderCommand::SetRoutingRules(r.clone()));
        }
        if let Some(c) = &self.carriers {
            commands.push(OrderCommand::SetCarrierRules(c.clone()));
        }
        commands
    }
}

fn check_names<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let names: Vec<&str> = names.collect();
    if names.len() > RULES_LIMIT {
        return Err(format!("more than {RULES_LIMIT} {what}s"));
    }
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(format!("{what} {i} has no name"));
        }
        if names[..i].contains(name) {
            return Err(format!("{what} {name} is defined twice"));
        }
    }
    Ok(())
}

fn check_values(values: &[String], rule: &str) -> Result<(), String> {
    if values.len() > VALUES_LIMIT {
        return Err(format!("rule {rule}: more than {VALUES_LIMIT} values"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Warehouse;
    use crate::ids::WarehouseId;

    #[test]
    fn nearest_prefers_city_entries_and_leaves_out_unreached_warehouses() {
        let text = r#"
[routing]
[[routing.rule]]
name = "near"
sort = "nearest"
[[routing.distance]]
buyer_region = "P"
warehouse_region = "a"
distance = 5
[[routing.distance]]
buyer_region = "P"
warehouse_region = "b"
distance = 9
[[routing.distance]]
buyer_region = "C"
warehouse_region = "b"
distance = 1
"#;
        let routing = RulesFile::parse(text).unwrap().routing.unwrap();
        let rule = &routing.rules[0];
        let wh = |id: u16, region: &str, priority: u16| Warehouse {
            id: WarehouseId(id),
            code: format!("W{id}"),
            region: region.into(),
            priority,
        };
        let warehouses = [wh(1, "a", 0), wh(2, "b", 0), wh(3, "c", 0), wh(4, "a", 1)];
        let ids = |v: Option<Vec<WarehouseId>>| v.map(|v| v.into_iter().map(|w| w.0).collect::<Vec<_>>());
        assert_eq!(ids(routing.preference(rule, "P", "", &warehouses)), Some(vec![1, 4, 2]));
        // The city's own entry wins for b; a is reached through the province.
        assert_eq!(ids(routing.preference(rule, "P", "C", &warehouses)), Some(vec![2, 1, 4]));
        assert_eq!(ids(routing.preference(rule, "X", "", &warehouses)), Some(vec![]));
        assert_eq!(routing.preference(&RoutingRule::fallback(), "P", "", &warehouses), None);
        let missing = "[routing]\n[[routing.rule]]\nname = \"near\"\nsort = \"nearest\"\n";
        assert!(RulesFile::parse(missing).unwrap_err().contains("needs [[routing.distance]]"));
    }
}
