"""The background loops of a serving process: durable timers, wake-ups, and the lease that
makes one process the owner of the outbox and the schedulers."""
