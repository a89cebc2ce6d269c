"""Payment gateways: `test_gateway` (built in, no network) and `stripe`, with Stripe's webhook signatures."""
