#!/bin/bash
# sagecycle OnStart: runs as root on every start (the root volume is new each time) within SageMaker's
# 5-minute limit; its output goes to CloudWatch Logs, /aws/sagemaker/NotebookInstances, stream
# <instance>/LifecycleConfigOnStart. It needs no network: what it installs travels inside it.
set -euo pipefail

IDLE_MINUTES=__IDLE_MINUTES__
AUTOSTOP_FLAGS="__AUTOSTOP_FLAGS__"
INSTALL_DIR=/usr/local/lib/sagecycle
LOG_FILE=/var/log/sagecycle-autostop.log

echo "sagecycle: installing the idle auto-stop (${IDLE_MINUTES} idle minutes)"
# Root-owned, so ec2-user (who has no root access) cannot change what the timer runs.
install -d -o root -g root -m 0755 "$INSTALL_DIR"
base64 -d <<'PAYLOAD' | gunzip > "$INSTALL_DIR/notebook_idle.py"
__IDLE_SCRIPT__
PAYLOAD
chmod 0644 "$INSTALL_DIR/notebook_idle.py"

# The Jupyter system environment has boto3; the system python3 falls back to the AWS CLI for the stop call.
PYTHON=""
for candidate in /home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python /usr/bin/python3; do
  if [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
    PYTHON="$candidate"
    break
  fi
done
if [ -z "$PYTHON" ]; then
  echo "sagecycle: ERROR: no Python 3.8+ on this instance, so it could never stop itself" >&2
  exit 1
fi

touch "$LOG_FILE"
chown ec2-user:ec2-user "$LOG_FILE"
cat > /etc/systemd/system/sagecycle-autostop.service <<UNIT
[Unit]
Description=sagecycle: stop this notebook instance after ${IDLE_MINUTES} idle minutes

[Service]
Type=oneshot
User=ec2-user
ExecStart=${PYTHON} ${INSTALL_DIR}/notebook_idle.py --idle-minutes ${IDLE_MINUTES} ${AUTOSTOP_FLAGS}
StandardOutput=append:${LOG_FILE}
StandardError=append:${LOG_FILE}
TimeoutStartSec=120
UNIT
cat > /etc/systemd/system/sagecycle-autostop.timer <<UNIT
[Unit]
Description=sagecycle: look for idleness every 5 minutes

[Timer]
OnActiveSec=5min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
UNIT
timeout 60 systemctl daemon-reload
timeout 60 systemctl enable --now sagecycle-autostop.timer

# Surface a broken install here, in the lifecycle log, rather than as an instance that never stops.
if ! timeout 60 runuser -u ec2-user -- "$PYTHON" "$INSTALL_DIR/notebook_idle.py" \
    --idle-minutes "$IDLE_MINUTES" --self-test 2>&1 | tee -a "$LOG_FILE"; then
  echo "sagecycle: WARNING: the auto-stop self-test failed (see above); this instance may not stop itself" >&2
fi

# Names the quickstart notebook reads (it never overrides variables that are already set).
install -d -o ec2-user -g ec2-user -m 0700 /home/ec2-user/.sagecycle
cat > /home/ec2-user/.sagecycle/env.json <<'ENV'
__ENVIRONMENT__
ENV
chown ec2-user:ec2-user /home/ec2-user/.sagecycle/env.json
echo "sagecycle: done; every auto-stop decision is logged to $LOG_FILE"
