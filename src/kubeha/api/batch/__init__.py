"""batch: Job and CronJob."""
