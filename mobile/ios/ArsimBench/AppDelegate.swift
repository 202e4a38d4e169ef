import ArsimCore
import UIKit

@main
final class AppDelegate: UIResponder, UIApplicationDelegate {
    var window: UIWindow?

    func application(_ application: UIApplication,
                     didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]?) -> Bool {
        setvbuf(stdout, nil, _IOLBF, 0) // ARSIM lines reach `devicectl … --console` as they happen
        application.isIdleTimerDisabled = true
        window = UIWindow(frame: UIScreen.main.bounds)
        // `-arsim.record <name>` (PROPOSED, CONTRACT §6): record a session instead of playing one
        let args = UserDefaults.standard.volatileDomain(forName: UserDefaults.argumentDomain)
        window?.rootViewController = RecordParams.requested(args) ? RecordingViewController() : PlaybackViewController()
        window?.makeKeyAndVisible()
        return true
    }
}
