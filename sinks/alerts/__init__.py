"""Alerting: rules over cycle records and process health, an on-disk outbox, and the outputs
(log, webhook, MQTT, stdout) that deliver each alert at least once."""
