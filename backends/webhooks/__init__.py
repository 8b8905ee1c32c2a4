"""WebhookSender adapters: DNS lookups and POSTs pinned to the address the domain vetted."""
