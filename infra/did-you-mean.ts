/** "Did you mean ...?" for a mistyped setting of `cdk.json`: the one matcher the CLI's options use too. */
export { editDistance, nearestName } from '../functions/commons/did-you-mean.js';
