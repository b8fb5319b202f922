<?php
/** Console application config for `./yii install` (splynx-addon-base-2). */

return function ($params, $baseDir) {
    return [];
};
