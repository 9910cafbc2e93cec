//! oms-gateway
