"""Index options: contract symbols, NSE expiry and lot-size calendars, pricing, option chains and the legs kernel."""
