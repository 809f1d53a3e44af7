// The names people give weft's objects and nodes. Node, network, endpoint and alias names may
// hold dots (`<name>.<network>` is looked up as a whole); a service name is a
// single DNS label, since `<service>` and `tasks.<service>` are looked up
// label by label. The same rules are checked by the CLI (to name the flag),
// the agent (every API request), the replicated-object filter (remote
// entries) and the load balancer (before a name goes into an nft comment).
// A node's name (`--name`, sent when it joins) follows the object rule.
// Names a container runtime sends (CNI, Docker) are checked against the same
// patterns, so a name one entry point accepts is accepted by all.

export const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const OBJECT_NAME_RULE = '1-63 letters, digits, "_", ".", "-", starting with a letter or digit';

export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const SERVICE_NAME_RULE = '1-63 letters, digits, "_", "-", starting with a letter or digit (it is a DNS label)';

/** CNI 1.0: a container ID is letters, digits, "_", ".", "-", starting with a letter or digit. */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
export const CONTAINER_ID_RULE = '1-255 letters, digits, "_", ".", "-", starting with a letter or digit';

/**
 * An interface name inside a sandbox, as the kernel takes it (IFNAMSIZ - 1 characters) and
 * `ip` parses it: no "/", ":" nor whitespace, and no leading "." or "-" (so neither "." nor
 * ".." nor something `ip` reads as an option). Checked by the API, the CNI plugin and the data plane.
 */
export const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
export const INTERFACE_NAME_RULE = '1-15 letters, digits, "_", ".", "-", starting with a letter, digit or "_"';
