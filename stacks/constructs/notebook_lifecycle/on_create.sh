#!/bin/bash
# sagecycle OnCreate: runs once, as root, when the instance is created. The quickstart notebook goes onto the
# persistent volume (/home/ec2-user/SageMaker), so it survives stops; an existing copy is never overwritten.
set -euo pipefail

TARGET=/home/ec2-user/SageMaker/quickstart.ipynb
if [ -e "$TARGET" ]; then
  echo "sagecycle: $TARGET exists; left as it is"
  exit 0
fi
base64 -d <<'PAYLOAD' | gunzip > "$TARGET"
__NOTEBOOK__
PAYLOAD
chown ec2-user:ec2-user "$TARGET"
chmod 0644 "$TARGET"
echo "sagecycle: installed $TARGET"
