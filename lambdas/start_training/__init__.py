"""The one start function: new data, schedule, drift/quality alarms and manual requests -> one training job."""
