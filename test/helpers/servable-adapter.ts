/** Tests' names for the synthetic adapters in src/adapters/synthetic.ts. */
export {
  syntheticAdapter as servableAdapter,
  syntheticAdapterBytes as servableAdapterBytes,
  type SyntheticOptions as ServableOptions,
} from "../../src/adapters/synthetic.js";
