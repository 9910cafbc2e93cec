//! The demo catalog `omsd --demo` loads into an empty data directory, through the normal command
//! path (so it is logged like any other change).

use std::sync::Arc;

use oms_proto::json::{DefineKit, DefineSku, DefineWarehouse, JsonLine, SkuKey, StockOp, WarehouseKey};
use oms_proto::{JsonRequest, Response};

use crate::server::ServerCtx;

/// (code, low-stock threshold, on-hand in warehouse 1, on-hand in warehouse 2)
const SKUS: [(&str, u32, u64, u64); 8] = [
    ("TSHIRT-RED-XL", 10, 120, 80),
    ("TSHIRT-BLU-M", 10, 200, 0),
    ("MUG-WHT", 5, 60, 40),
    ("SNEAKER-42", 3, 25, 10),
    ("SOCKS-3P", 20, 500, 300),
    ("CAP-BLK", 5, 40, 0),
    ("PHONE-X", 2, 10, 5),
    ("CHARGER-USB-C", 10, 0, 150),
];

pub async fn load(ctx: &Arc<ServerCtx>) -> Result<(), String> {
    let mut requests = vec![
        JsonRequest::DefineWarehouse(DefineWarehouse { id: 1, code: "SH".into(), region: "east".into(), priority: 0 }),
        JsonRequest::DefineWarehouse(DefineWarehouse { id: 2, code: "BJ".into(), region: "north".into(), priority: 1 }),
    ];
    for (code, threshold, first, second) in SKUS {
        requests.push(JsonRequest::DefineSku(DefineSku { code: code.into(), low_stock_threshold: threshold }));
        for (warehouse, on_hand) in [(1, first), (2, second)] {
            if on_hand > 0 {
                requests.push(JsonRequest::StockOp(StockOp::SetOnHand {
                    sku: SkuKey::Code(code.into()),
                    warehouse: WarehouseKey::Id(warehouse),
                    on_hand,
                }));
            }
        }
    }
    requests.push(JsonRequest::DefineKit(DefineKit {
        code: "GIFT-BOX".into(),
        components: vec![
            JsonLine { sku: SkuKey::Code("MUG-WHT".into()), qty: 1 },
            JsonLine { sku: SkuKey::Code("SOCKS-3P".into()), qty: 2 },
        ],
    }));
    for request in requests {
        match ctx.clone().execute(request).await {
            Response::Error(e) => return Err(format!("{}: {}", e.name, e.message)),
            _ => continue,
        }
    }
    tracing::info!(skus = SKUS.len() + 1, "demo catalog loaded (warehouses SH and BJ, GIFT-BOX kit)");
    Ok(())
}
