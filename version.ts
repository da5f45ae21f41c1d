/** Orca's version, shown by `orca --version` and the API. */
export const VERSION = "0.1.0";
