//! The OpenAPI 3.1 contract, generated from the handlers and wire types (utoipa), then
//! completed with what every operation shares: security schemes, the problem responses each
//! route can produce, and the correlation header. Served at `/openapi.json` and committed as
//! `contracts/openapi.json`.

use axum::Json;
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::dto;
use crate::problem::CODES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "crossdock governed API",
        description = "Order submission, status, inventory, pricing, shipments, returns and account sync between Salesforce and the ERP. Errors are RFC 9457 problems whose `type` ends with a stable code documented in docs/errors/<code>.md.",
        license(name = "Apache-2.0")
    ),
    paths(
        crate::v1::orders::submit,
        crate::v1::orders::list,
        crate::v1::orders::status,
        crate::v1::orders::timeline,
        crate::v1::orders::shipments,
        crate::v1::inventory::inquire,
        crate::v1::prices::quote,
        crate::v1::returns::request,
        crate::v1::returns::status,
        crate::v1::accounts::put,
        crate::v2::order,
        crate::webhooks::erp,
    ),
    components(schemas(
        dto::SubmitOrder, dto::SubmitLine, dto::ChannelName, dto::OrderAccepted,
        dto::ValidationReport, dto::ValidationState, dto::CheckReport, dto::FulfilmentReport,
        dto::OrderLinks, dto::OrderStatusV1, dto::OrderPage, dto::TimelineItem, dto::TimelinePage,
        dto::LineQuantity, dto::ShipmentView, dto::ShipmentsView, dto::InventorySource,
        dto::StockLevel, dto::InventoryView, dto::PriceItem, dto::PriceQuery, dto::PriceQuote,
        dto::PriceList, dto::ReturnLine, dto::ReturnSubmission, dto::ReturnAccepted,
        dto::ReturnView, dto::TierName, dto::AddressBody, dto::AccountBody,
        dto::AccountAccepted, dto::WebhookAccepted, dto::ProblemDoc, dto::FieldErrorDoc,
        dto::LineView, dto::InvoiceView, dto::AmountsView, dto::OrderIds, dto::StatusView,
        dto::OrderStatusV2,
    )),
    tags(
        (name = "orders", description = "Order submission and status"),
        (name = "inventory", description = "Inventory inquiry with explicit staleness"),
        (name = "pricing", description = "Account-specific prices"),
        (name = "returns", description = "Return authorisation"),
        (name = "accounts", description = "Customer account sync"),
        (name = "webhooks", description = "Signed notifications from the ERP"),
    )
)]
struct ApiDoc;

/// Version of the contract (bump on any change; the breaking-change check compares versions).
pub const VERSION: &str = "1.1.0";

/// The complete contract as JSON.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["openapi"] = json!("3.1.0");
    doc["info"]["version"] = json!(VERSION);
    doc["components"]["securitySchemes"] = json!({
        "api_key": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cdk_<id>_<secret>",
            "description": "An API key created with `crossdock api-key create` (also accepted in `X-Api-Key`)."
        },
        "oauth2": {
            "type": "oauth2",
            "description": "An RS256 or ES256 JWT from the configured identity provider; `scope` lists the granted scopes.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth2/token",
                    "scopes": {
                        "orders:write": "Submit orders",
                        "orders:read": "Read orders, timelines and shipments",
                        "inventory:read": "Inventory inquiry",
                        "prices:read": "Pricing retrieval",
                        "returns:write": "Request returns",
                        "returns:read": "Read returns",
                        "accounts:write": "Sync customer accounts",
                        "ops:read": "Read operations views",
                        "ops:write": "Act on operations"
                    }
                }
            }
        }
    });
    doc["components"]["headers"] = json!({
        "CorrelationId": {
            "description": "The request's correlation id (from X-Correlation-Id, or generated)",
            "schema": { "type": "string" }
        }
    });
    let order_links = json!({
        "GetOrder": { "operationId": "getOrder", "parameters": { "id": "$response.body#/order_id" } },
        "GetOrderV1": { "operationId": "getOrderV1", "parameters": { "id": "$response.body#/order_id" } },
        "GetOrderTimeline": { "operationId": "getOrderTimeline", "parameters": { "id": "$response.body#/order_id" } },
        "GetOrderShipments": { "operationId": "getOrderShipments", "parameters": { "id": "$response.body#/order_id" } },
    });
    doc["paths"]["/v1/orders"]["post"]["responses"]["202"]["links"] = order_links;
    doc["paths"]["/v1/returns"]["post"]["responses"]["202"]["links"] = json!({
        "GetReturn": { "operationId": "getReturn", "parameters": { "rma": "$response.body#/rma" } },
    });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in operations.iter_mut() {
                complete(path, method, operation);
            }
        }
    }
    doc
}

/// Adds the problem responses an operation can produce and the correlation header.
fn complete(path: &str, method: &str, operation: &mut Value) {
    let has_body = matches!(method, "post" | "put" | "patch");
    let webhook = path.starts_with("/webhooks/");
    let mut statuses: Vec<u16> = vec![400, 404, 500, 503];
    if has_body {
        statuses.extend([413, 415]);
    }
    if webhook {
        statuses.push(401);
    } else {
        statuses.extend([401, 403, 422, 429]);
    }
    if path == "/v1/orders" && method == "post" {
        statuses.push(409);
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for status in statuses {
        let codes: Vec<&str> = CODES
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(c, _, _)| *c)
            .collect();
        responses.entry(status.to_string()).or_insert_with(|| {
            json!({
                "description": format!("Problem ({})", codes.join(", ")),
                "content": {
                    "application/problem+json": {
                        "schema": { "$ref": "#/components/schemas/ProblemDoc" }
                    }
                }
            })
        });
    }
    for response in responses.values_mut() {
        if let Some(object) = response.as_object_mut() {
            let headers = object.entry("headers").or_insert_with(|| json!({}));
            headers["X-Correlation-Id"] = json!({ "$ref": "#/components/headers/CorrelationId" });
        }
    }
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_is_openapi_3_1_with_every_service() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/v1/orders",
            "/v1/orders/{id}",
            "/v1/orders/{id}/timeline",
            "/v1/orders/{id}/shipments",
            "/v1/inventory",
            "/v1/prices",
            "/v1/returns",
            "/v1/returns/{rma}",
            "/v1/accounts/{external_ref}",
            "/v2/orders/{id}",
            "/webhooks/erp",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(|item| item.as_object())
            .flat_map(|ops| ops.values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids are unique");
        let submit = &doc["paths"]["/v1/orders"]["post"];
        for status in ["202", "401", "403", "409", "413", "415", "422", "429"] {
            assert!(submit["responses"][status].is_object(), "{status} missing");
        }
    }

    #[test]
    fn request_types_refuse_unknown_fields_in_the_contract() {
        let doc = document();
        let schema = &doc["components"]["schemas"]["SubmitOrder"];
        assert_eq!(schema["additionalProperties"], false, "{schema}");
    }
}
