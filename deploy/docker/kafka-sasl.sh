#!/bin/bash
# The compose broker as in production: SASL/SCRAM-SHA-512 on the clients' listener,
# the StandardAuthorizer with the ACLs `delego acls apply` creates, `admin` the super
# user. Each user's password is a compose secret (/run/secrets/kafka_<user>); the users
# are created with the storage (kafka-storage format --add-scram) on the first start.
# The controller listener is PLAINTEXT on the container's loopback only: SCRAM cannot
# authenticate a KRaft controller, and its ANONYMOUS principal (the broker registering
# itself) must be a super user. Same configuration as deploy/local/localinfra.py's
# SASL option.
set -euo pipefail

USERS=(admin catalog matching billing notifications)
CONFIG=/tmp/delego-kafka/server.properties
CLIENT=/tmp/delego-kafka/admin.properties  # for the health check
DATA=/var/lib/kafka/data
mkdir -p /tmp/delego-kafka && chmod 700 /tmp/delego-kafka

secret() { tr -d '\r\n' < "/run/secrets/kafka_$1"; }
ADMIN_PASSWORD="$(secret admin)"
JAAS="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"${ADMIN_PASSWORD}\";"

cat > "$CONFIG" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093
advertised.listeners=SASL_PLAINTEXT://kafka:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=${JAAS}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs=${DATA}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS

cat > "$CLIENT" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=${JAAS}
PROPS

if [ ! -f "$DATA/meta.properties" ]; then
  SCRAM=()
  for user in "${USERS[@]}"; do
    SCRAM+=(--add-scram "SCRAM-SHA-512=[name=${user},password=$(secret "$user")]")
  done
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
    -c "$CONFIG" "${SCRAM[@]}"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
