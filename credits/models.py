# Credit grants and their ledger arrive with the billing-credits issue.
