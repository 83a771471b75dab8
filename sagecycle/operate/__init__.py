"""Operator commands against a deployed stage: `sagecycle status | retrain | approve | reject | rollback | transform`.

One module per concern:
- `target`: which stage, region and AWS endpoint (`--endpoint-url` for a local AWS such as the rehearsal's),
  the account (STS) and every resource name, all from `contract.names`;
- `options`: the options every command shares, the errors and the exit codes;
- `functions`: calling the stage's Lambda functions: Lambda's API on AWS, the rehearsal's in-process runner
  when the rehearsal's local AWS is the target;
- `state`: what `status` reads (champion, endpoint, deployments, lock, runs, alarms, quarantine);
- `render`: tables for people (rich), JSON for scripts;
- `status`, `retrain`, `registry` (approve/reject), `rollback`, `transform`: one command each, `main(argv)`.

Exit codes (every command): 0 ok; 1 refused or unhealthy (an alarm in ALARM, the endpoint not InService, a guard
skipped the retrain, the rollback was refused, a package outside the stage's group, an AWS error); 2 usage (bad
arguments, unknown stage, nothing deployed).
"""
