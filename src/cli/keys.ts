import { ConfigError, loadConfig } from '../config.js';
import { runKeysCli } from './keys-cli.js';

/** `npm run keys -- <command>`: the operator's command line; see `--help`. */
async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`configuration error: ${error.message}`);
    return 2;
  }
  return runKeysCli(process.argv.slice(2), config, {
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  });
}

main().then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(1);
});
