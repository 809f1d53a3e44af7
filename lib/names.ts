// The names people give weft's objects and nodes. Node, network, endpoint and alias names may
// hold dots (`<name>.<network>` is looked up as a whole); a service name is a
// single DNS label, since `<service>` and `tasks.<service>` are looked up
// label by label. The same rules are checked by the CLI (to name the flag),
// the agent (every API request), the replicated-object filter (remote
// entries) and the load balancer (before a name goes into an nft comment).
// A node's name (`--name`, sent when it joins) follows the object rule.

export const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const OBJECT_NAME_RULE = '1-63 letters, digits, "_", ".", "-", starting with a letter or digit';

export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const SERVICE_NAME_RULE = '1-63 letters, digits, "_", "-", starting with a letter or digit (it is a DNS label)';

/** CNI 1.0: a container ID is letters, digits, "_", ".", "-", starting with a letter or digit. */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
export const CONTAINER_ID_RULE = '1-255 letters, digits, "_", ".", "-", starting with a letter or digit';
