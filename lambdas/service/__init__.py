"""The request flow's logic as plain modules (submit, status, worker, DLQ); handlers only wire Powertools to them."""
